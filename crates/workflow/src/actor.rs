//! Who acts: a user with roles, and the sites whose data they may see.
//!
//! Every workflow call takes the [`Actor`] it acts for and decides from it,
//! so that the HTTP layer, the CLI and the tests are held to the same
//! rules. How the actor was authenticated (session, bearer token, the
//! server's own console) is not this crate's business.

use serde::{Deserialize, Serialize};
use telediag_archive::accounts::UserRow;

use crate::error::WorkflowError;

/// What a user may do. A user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the centre: sites, users, everything.
    Admin,
    /// Referring doctor or technician at one county hospital: sees that site only.
    SiteUser,
    Radiologist,
    EcgDoctor,
    /// May co-sign reports (审核医师).
    Reviewer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::SiteUser, Role::Radiologist, Role::EcgDoctor, Role::Reviewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SiteUser => "site_user",
            Role::Radiologist => "radiologist",
            Role::EcgDoctor => "ecg_doctor",
            Role::Reviewer => "reviewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Which sites' data a user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Centre staff: every site.
    AllSites,
    /// Site staff: this site only.
    Site(i64),
}

/// A user acting: the caller of every workflow operation.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub site_id: Option<i64>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Refuses unless the actor holds `role`; `what` names the action.
    pub fn require(&self, role: Role, what: &str) -> Result<(), WorkflowError> {
        if self.has(role) { Ok(()) } else { Err(WorkflowError::forbidden(what)) }
    }

    /// Reads and writes reports: a radiologist or an ECG doctor.
    pub fn is_reader(&self) -> bool {
        self.has(Role::Radiologist) || self.has(Role::EcgDoctor)
    }

    /// The data scope: a site user sees only their site even if they also
    /// hold another role; a user with no role that reads sees nothing.
    pub fn scope(&self) -> Result<Scope, WorkflowError> {
        if self.has(Role::SiteUser) {
            return self.site_id.map(Scope::Site).ok_or_else(|| WorkflowError::forbidden("reading data without a site"));
        }
        if self.roles.iter().any(|r| matches!(r, Role::Admin | Role::Radiologist | Role::EcgDoctor | Role::Reviewer)) {
            return Ok(Scope::AllSites);
        }
        Err(WorkflowError::forbidden("reading patient data"))
    }

    /// Whether the actor's scope covers `site_id`.
    pub fn sees_site(&self, site_id: i64) -> Result<bool, WorkflowError> {
        Ok(match self.scope()? {
            Scope::AllSites => true,
            Scope::Site(site) => site == site_id,
        })
    }
}

impl From<UserRow> for Actor {
    fn from(row: UserRow) -> Self {
        Actor {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            roles: row.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            site_id: row.site_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_user_sees_only_their_site_whatever_else_they_hold() {
        let mut user = Actor { id: 1, username: "u".into(), display_name: "u".into(), roles: vec![Role::SiteUser], site_id: Some(7) };
        assert_eq!(user.scope(), Ok(Scope::Site(7)));
        user.roles.push(Role::Admin);
        assert_eq!(user.scope(), Ok(Scope::Site(7)), "the site role narrows, never widens");
        assert!(!user.sees_site(8).unwrap());
        let reader = Actor { id: 2, username: "r".into(), display_name: "r".into(), roles: vec![Role::Radiologist], site_id: None };
        assert_eq!(reader.scope(), Ok(Scope::AllSites));
        let nobody = Actor { roles: vec![], ..reader };
        assert!(matches!(nobody.scope(), Err(WorkflowError::Forbidden(_))));
        let siteless = Actor { roles: vec![Role::SiteUser], site_id: None, ..nobody };
        assert!(siteless.scope().is_err(), "a site user without a site sees nothing");
    }
}
