//! Tencent Cloud API 3.0 (SMS, FaceID, IDCardOCR): the wire protocol shared by every
//! service. Only the request signature so far; the adapters come on top of it.

pub mod tc3;
