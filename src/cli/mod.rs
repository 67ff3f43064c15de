//! Admin commands of the `strata` binary that talk to a running broker.

mod client;
pub mod groups;
