//! Text for terminals: aligned tables ([`table`]), used by `status`, `audit` and the week view
//! ([`week`]) of `status --week`, and the escaping of whatever they show that came from
//! outside ([`escape`]).

pub mod escape;
pub mod table;
pub mod week;

pub use escape::escape;
