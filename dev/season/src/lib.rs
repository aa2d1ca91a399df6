//! `tipoff-season`: a deterministic synthetic NBA season and an HTTP server that serves it in the
//! shapes of the upstream APIs the legacy scrapers used. Dev and tests only: production code
//! never depends on this crate.
//!
//! * [`league`]: the 30 real teams and synthetic players with latent rates.
//! * [`schedule`]: a real-shaped 1,230-game schedule.
//! * [`season`]: box scores, shots, injury reports and bookmaker lines drawn from the latents.
//! * [`truth`]: the ground-truth export (latents and expected points per player-game).
//! * [`server`]: the upstream-API server with a simulated clock and fault injection.

pub mod league;
pub mod rng;
pub mod schedule;
pub mod season;
pub mod server;
pub mod truth;

pub use season::Season;
