//! Text for terminals: aligned tables ([`table`]), used by `status`, `audit` and the week view
//! ([`week`]) of `status --week`.

pub mod table;
pub mod week;
