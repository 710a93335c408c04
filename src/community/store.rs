//! Storage of the community: one submodule of SQL per resource. Handlers never hold SQL;
//! they call these functions with parsed values.

pub mod articles;
pub mod comments;
pub mod users;
