//! The domain: the `Organization` and `Account` aggregates, their commands and events, and the
//! validated values they are made of. Nothing here touches AWS or the store.

pub mod account;
pub mod organization;
mod values;

pub use values::*;
