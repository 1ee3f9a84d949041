//! Labelled shop traffic over weeks of simulated time, reproducible from a seed, in
//! the history format (`shared::HistoryRecord`): legitimate shoppers with habits and a
//! daily and weekly rhythm, and tagged fraud campaigns; each with the outcomes and the
//! label delays that would follow it.

mod feedback;
pub mod params;
mod world;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shared::HistoryRecord;

pub use params::Params;

/// The whole history, in time order, transaction ids `sim-<seed>-<n>` in that order.
pub fn simulate(params: &Params, seed: u64) -> anyhow::Result<Vec<HistoryRecord>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut world = world::World::new(params, &mut rng)?;
    world.shoppers(&mut rng);
    world.fraud(&mut rng);
    let mut history = world.into_history(seed);
    feedback::annotate(&mut history, &params.feedback, seed);
    Ok(history)
}
