//! SF Express Open Platform (顺丰开放平台): the wire facts of its `/std/service` calls. Only the
//! message digest so far; the courier adapter comes on top of it.

pub mod digest;
