//! Sites: the county hospitals that send to the centre.
//!
//! A site owns AE titles (an AE title belongs to one site only) and, optionally,
//! the networks its associations must come from. The gateway asks a
//! [`SiteDirectory`] snapshot, never the database, on each association, and
//! reloads it when sites change.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::Row;

use crate::db::{Database, DbError, now_ms};

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Site {
    pub id: i64,
    pub name: String,
    pub ae_titles: Vec<String>,
    /// Empty means any address.
    pub networks: Vec<IpNet>,
}

/// What a new site is made of.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewSite {
    pub name: String,
    pub ae_titles: Vec<String>,
    #[serde(default)]
    pub networks: Vec<IpNet>,
}

/// Why an AE title is not acceptable (PS3.8 §9.3.2: 1–16 characters of the
/// default repertoire, no backslash or control characters, not all spaces).
pub fn check_ae_title(ae: &str) -> Result<String, String> {
    let trimmed = ae.trim();
    if trimmed.is_empty() || trimmed.len() > 16 {
        return Err(format!("AE title must be 1 to 16 characters, found {:?}", ae));
    }
    if !trimmed.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\') {
        return Err(format!("AE title must be printable ASCII without backslash, found {:?}", ae));
    }
    Ok(trimmed.to_owned())
}

impl Database {
    /// Adds a site. Fails with `Conflict` when the name or an AE title is taken.
    pub async fn add_site(&self, site: &NewSite) -> Result<Site, DbError> {
        let name = site.name.trim();
        if name.is_empty() {
            return Err(DbError::Conflict("a site needs a name".into()));
        }
        if site.ae_titles.is_empty() {
            return Err(DbError::Conflict(format!("site {name:?} needs at least one AE title")));
        }
        let ae_titles = site.ae_titles.iter().map(|ae| check_ae_title(ae)).collect::<Result<Vec<_>, _>>().map_err(DbError::Conflict)?;
        let mut tx = self.pool().begin().await?;
        if sqlx::query("SELECT 1 FROM sites WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?.is_some() {
            return Err(DbError::Conflict(format!("a site named {name:?} exists already")));
        }
        let id: i64 = sqlx::query_scalar("INSERT INTO sites (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        for ae in &ae_titles {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT s.name FROM site_ae_titles a JOIN sites s ON s.id = a.site_id WHERE a.ae_title = $1")
                    .bind(ae)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(owner) = owner {
                return Err(DbError::Conflict(format!("AE title {ae} belongs to site {owner:?} already")));
            }
            sqlx::query("INSERT INTO site_ae_titles (ae_title, site_id) VALUES ($1, $2)").bind(ae).bind(id).execute(&mut *tx).await?;
        }
        for net in &site.networks {
            sqlx::query("INSERT INTO site_networks (site_id, cidr) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(net.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Site { id, name: name.to_owned(), ae_titles, networks: site.networks.clone() })
    }

    /// All sites, by name.
    pub async fn list_sites(&self) -> Result<Vec<Site>, DbError> {
        let rows = sqlx::query("SELECT id, name FROM sites ORDER BY name").fetch_all(self.pool()).await?;
        let aes = sqlx::query("SELECT site_id, ae_title FROM site_ae_titles ORDER BY ae_title").fetch_all(self.pool()).await?;
        let nets = sqlx::query("SELECT site_id, cidr FROM site_networks ORDER BY cidr").fetch_all(self.pool()).await?;
        let mut sites: Vec<Site> =
            rows.iter().map(|r| Site { id: r.get(0), name: r.get(1), ae_titles: vec![], networks: vec![] }).collect();
        let index: HashMap<i64, usize> = sites.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        for r in aes {
            if let Some(&i) = index.get(&r.get::<i64, _>(0)) {
                sites[i].ae_titles.push(r.get(1));
            }
        }
        for r in nets {
            let cidr: String = r.get(1);
            if let (Some(&i), Ok(net)) = (index.get(&r.get::<i64, _>(0)), cidr.parse()) {
                sites[i].networks.push(net);
            }
        }
        Ok(sites)
    }

    pub async fn site_by_name(&self, name: &str) -> Result<Site, DbError> {
        self.list_sites()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| DbError::NotFound { what: "site", name: name.to_owned() })
    }

    /// Removes a site that has no studies (studies are records; they are never
    /// dropped with their site).
    pub async fn remove_site(&self, name: &str) -> Result<(), DbError> {
        let site = self.site_by_name(name).await?;
        let studies: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM studies WHERE site_id = $1").bind(site.id).fetch_one(self.pool()).await?;
        if studies > 0 {
            return Err(DbError::Conflict(format!("site {name:?} has {studies} studies; a site with studies cannot be removed")));
        }
        // Its claims on UIDs of objects never stored go with it.
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM uid_claims WHERE site_id = $1").bind(site.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sites WHERE id = $1").bind(site.id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A snapshot for the gateway's access checks.
    pub async fn site_directory(&self) -> Result<SiteDirectory, DbError> {
        let mut directory = SiteDirectory::new(self.list_sites().await?);
        let pins = sqlx::query("SELECT c.fingerprint, s.id, s.name FROM site_certificates c JOIN sites s ON s.id = c.site_id")
            .fetch_all(self.pool())
            .await?;
        directory.certificates = pins.iter().map(|r| (r.get(0), SiteRef { id: r.get(1), name: r.get(2) })).collect();
        Ok(directory)
    }

    /// Pins a client certificate (its SHA-256 `fingerprint`, lower-case
    /// hex) to `site` for the DICOM TLS port.
    pub async fn add_site_certificate(&self, site: &str, fingerprint: &str, subject: &str) -> Result<(), DbError> {
        let site = self.site_by_name(site).await?;
        let holder: Option<i64> = sqlx::query_scalar("SELECT site_id FROM site_certificates WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(self.pool())
            .await?;
        if holder.is_some_and(|h| h != site.id) {
            return Err(DbError::Conflict("this certificate is pinned to another site".into()));
        }
        sqlx::query(
            "INSERT INTO site_certificates (fingerprint, site_id, subject, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(fingerprint)
        .bind(site.id)
        .bind(subject)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Unpins a certificate: devices presenting it are refused from now on.
    pub async fn remove_site_certificate(&self, fingerprint: &str) -> Result<(), DbError> {
        let removed = sqlx::query("DELETE FROM site_certificates WHERE fingerprint = $1").bind(fingerprint).execute(self.pool()).await?;
        if removed.rows_affected() == 0 {
            return Err(DbError::NotFound { what: "certificate", name: fingerprint.to_owned() });
        }
        Ok(())
    }
}

/// The site an association was accepted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRef {
    pub id: i64,
    pub name: String,
}

/// Why an association is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("calling AE title {calling_ae:?} belongs to no site")]
    UnknownCallingAe { calling_ae: String },
    #[error("calling AE title {calling_ae:?} of site {site:?} is not allowed from {address}")]
    WrongAddress { calling_ae: String, site: String, address: IpAddr },
    #[error("calling AE title {calling_ae:?} belongs to site {site:?}, but the TLS certificate is {certificate_site:?}'s")]
    WrongCertificate { calling_ae: String, site: String, certificate_site: String },
}

/// An in-memory view of sites for access control.
#[derive(Debug, Clone, Default)]
pub struct SiteDirectory {
    by_ae: HashMap<String, (SiteRef, Vec<IpNet>)>,
    /// Pinned client certificates (SHA-256 hex) and their sites.
    certificates: HashMap<String, SiteRef>,
}

impl SiteDirectory {
    pub fn new(sites: Vec<Site>) -> Self {
        let mut by_ae = HashMap::new();
        for site in sites {
            let site_ref = SiteRef { id: site.id, name: site.name.clone() };
            for ae in &site.ae_titles {
                by_ae.insert(ae.clone(), (site_ref.clone(), site.networks.clone()));
            }
        }
        SiteDirectory { by_ae, certificates: HashMap::new() }
    }

    /// Every pinned client certificate (SHA-256 hex).
    pub fn pinned_certificates(&self) -> impl Iterator<Item = &str> {
        self.certificates.keys().map(String::as_str)
    }

    /// Whether `site_id` has pinned certificates: such a site sends over
    /// DICOM TLS only (its AE titles alone no longer open the plain port).
    pub fn requires_tls(&self, site_id: i64) -> bool {
        self.certificates.values().any(|s| s.id == site_id)
    }

    /// The site a client certificate (SHA-256 hex) is pinned to.
    pub fn site_of_certificate(&self, fingerprint: &str) -> Option<&SiteRef> {
        self.certificates.get(fingerprint)
    }

    /// [`Self::authorize`] for an association over TLS: the calling AE must
    /// also belong to the site the client certificate is pinned to.
    pub fn authorize_with_certificate(
        &self,
        calling_ae: &str,
        address: IpAddr,
        certificate_site: &SiteRef,
    ) -> Result<SiteRef, AccessDenied> {
        let site = self.authorize(calling_ae, address)?;
        if site.id != certificate_site.id {
            return Err(AccessDenied::WrongCertificate {
                calling_ae: calling_ae.trim().to_owned(),
                site: site.name,
                certificate_site: certificate_site.name.clone(),
            });
        }
        Ok(site)
    }

    /// Decides whether `calling_ae` may send from `address`.
    pub fn authorize(&self, calling_ae: &str, address: IpAddr) -> Result<SiteRef, AccessDenied> {
        let calling_ae = calling_ae.trim();
        let (site, networks) =
            self.by_ae.get(calling_ae).ok_or_else(|| AccessDenied::UnknownCallingAe { calling_ae: calling_ae.to_owned() })?;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        if networks.is_empty() || networks.iter().any(|n| n.contains(&address)) {
            Ok(site.clone())
        } else {
            Err(AccessDenied::WrongAddress { calling_ae: calling_ae.to_owned(), site: site.name.clone(), address })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_checks_ae_and_network() {
        let dir = SiteDirectory::new(vec![
            Site { id: 1, name: "A县医院".into(), ae_titles: vec!["A_CT".into()], networks: vec![] },
            Site { id: 2, name: "B".into(), ae_titles: vec!["B_CT".into()], networks: vec!["10.1.0.0/16".parse().unwrap()] },
        ]);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(dir.authorize("A_CT", local).unwrap().id, 1);
        assert!(matches!(dir.authorize("NOPE", local), Err(AccessDenied::UnknownCallingAe { .. })));
        assert!(matches!(dir.authorize("B_CT", local), Err(AccessDenied::WrongAddress { .. })));
        assert_eq!(dir.authorize("B_CT", "10.1.2.3".parse().unwrap()).unwrap().id, 2);
        assert_eq!(dir.authorize("B_CT", "::ffff:10.1.2.3".parse().unwrap()).unwrap().id, 2);
    }

    #[test]
    fn ae_titles_are_checked() {
        assert_eq!(check_ae_title(" CT1 ").unwrap(), "CT1");
        assert!(check_ae_title("").is_err());
        assert!(check_ae_title("ABCDEFGHIJKLMNOPQ").is_err());
        assert!(check_ae_title("A\\B").is_err());
    }
}
