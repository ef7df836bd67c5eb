//! The operations of the [`Device`](super::Device) handle, one file per area; every one
//! takes the device's lock, does its work synchronously and releases it.

mod configuration;
mod credentials;
mod doors;
mod lifecycle;
mod objects;
mod sessions;
