//! Follow-ups: durable timers, and the host's rules at firing time.
//!
//! The tenant's `follow-up` plugin plans; this module keeps the plan. Each
//! conversation has at most one pending follow-up, stored in sled and
//! indexed by due time, so firing scans only what is due. A due timer is
//! handed to the pipeline's journal and removed in one atomic write (it
//! fires in effect once); the message it sends carries an id derived from
//! the timer, so even a timer re-created by a replay never sends twice.
//!
//! At firing time the host checks again, whatever the plan said: has the
//! contact replied since, has a human taken over or paused automation, has
//! the contact opted out, is the 24-hour window still open (else only a
//! template may go), and is it quiet hours where the contact lives (then
//! the follow-up waits for the morning).

mod quiet;
mod timers;

pub use quiet::{QuietHours, contact_timezone};
pub use timers::{Due, Pending, Timer, Timers};
