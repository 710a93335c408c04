//! Storage of the catalogue: one submodule of SQL per resource. Handlers never hold SQL; they
//! call these functions with parsed values.
//!
//! Named `repo`, not `store` as in the community module, because a *store* here is a snack
//! bar: `catalog::store::stores` would read like a stutter and mislead.

pub mod menu;
pub mod reviews;
pub mod stadiums;
pub mod stores;
