//! The personalisation station (制证工作站): `yiqian station` on a workstation with a hub of
//! UKEYs, talking to the server over its station API only.
//!
//! - [`wire`]: the API's bodies, shared with the server's handlers;
//! - [`client`]: the HTTP client;
//! - [`run`]: a run over the keys present, one worker per key;
//! - [`counter`]: counter services with the key in hand;
//! - [`credential`]: enrolment and the credential file the station keeps.

pub mod client;
pub mod counter;
pub mod credential;
pub mod run;
pub mod wire;
