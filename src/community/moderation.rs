//! Who may delete community content: its author, or an admin. One rule, used by the JSON API
//! (`DELETE /api/articles/{slug}`, `DELETE /api/articles/{slug}/comments/{id}`) and the web
//! UI (the delete buttons and their handlers), so the two never disagree. Editing stays the
//! author's alone: an admin removes content, never rewrites it.

use crate::community::store::users as user_store;
use crate::db::Db;
use crate::error::{AppError, Result};

/// Someone asking to delete: who they are and whether they are an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub admin: bool,
}

impl Actor {
    /// Reads the user's role (the API's token carries only the id).
    pub async fn load(db: &Db, user_id: i64) -> Result<Actor> {
        let user = user_store::find_by_id(db, user_id)
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Actor {
            id: user_id,
            admin: user.role == "admin",
        })
    }
}

/// The rule: the author may delete their article or comment, and an admin anyone's.
pub fn may_delete(author_id: i64, actor: Actor) -> bool {
    actor.admin || actor.id == author_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_author_and_admins_may_delete_and_nobody_else() {
        let fan = Actor {
            id: 1,
            admin: false,
        };
        let admin = Actor { id: 2, admin: true };
        assert!(may_delete(1, fan));
        assert!(!may_delete(3, fan));
        assert!(may_delete(3, admin));
    }
}
