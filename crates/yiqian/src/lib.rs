//! The yiqian service as a library: configuration ([`config`], with the vendor sections in
//! [`vendors`]) and assembly of store, providers, application and HTTP server ([`server`]). The `yiqian` binary and the journey
//! tests both start the service through [`server::Server::start`].

pub mod backup;
pub mod config;
pub mod server;
pub mod shared_keys;
pub mod station;
pub mod ukey;
pub mod vendors;
