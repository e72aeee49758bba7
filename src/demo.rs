//! The demo centre: a county hospital, its staff, three studies and an ECG, loaded on
//! first start so a new installation has something to look at.

use std::path::Path;

use anyhow::{Context, Result};
use telediag_archive::{Archive, NewSite, Origin};
use telediag_worklist::auth::{self, NewUser, Role};

pub const DEMO_SITE: &str = telediag_sample_data::DEMO_INSTITUTION;

/// Creates the demo site and users (once) and imports the demo studies
/// (idempotent: they are deterministic, so a second import stores nothing).
/// Processes starting at once on one PostgreSQL take turns: the second
/// finds the site the first made.
pub async fn load(archive: &Archive, data_dir: &Path) -> Result<()> {
    let db = archive.database();
    let turn = db.advisory_lock("demo centre").await.context("waiting for another process loading the demo")?;
    let loaded = load_alone(archive, data_dir).await;
    if let Some(turn) = turn {
        turn.release().await;
    }
    loaded
}

async fn load_alone(archive: &Archive, data_dir: &Path) -> Result<()> {
    let db = archive.database();
    let site = match db.site_by_name(DEMO_SITE).await {
        Ok(site) => site,
        Err(_) => {
            let site = db
                .add_site(&NewSite {
                    name: DEMO_SITE.into(),
                    ae_titles: vec!["DEMO_CT".into(), "DEMO_CR".into(), "DEMO_US".into(), "DEMO_ECG".into()],
                    networks: vec![],
                })
                .await?;
            let mut lines = vec![format!("Demo users of {DEMO_SITE} (created {}):", chrono_free_now())];
            for (username, display_name, roles, site) in [
                ("demo_site", "县医院 李技师", vec![Role::SiteUser], Some(DEMO_SITE)),
                ("demo_radiologist", "放射科 陈医生", vec![Role::Radiologist], None),
                ("demo_ecg", "心电图室 刘医生", vec![Role::EcgDoctor], None),
                ("demo_reviewer", "审核 黄主任", vec![Role::Radiologist, Role::Reviewer], None),
            ] {
                let password = hex_password();
                let doctor = site.is_none();
                let id = auth::create_user(
                    db,
                    &NewUser {
                        username: username.into(),
                        display_name: display_name.into(),
                        password: password.clone(),
                        roles,
                        site: site.map(str::to_owned),
                    },
                )
                .await
                .with_context(|| format!("creating demo user {username}"))?;
                // A demo doctor's first signature issues their key: the
                // enrolment code a registration officer would hand them.
                let enrolment = if doctor {
                    let code = telediag_worklist::signing::enrolment::issue(db, id, 24 * 365).await?;
                    format!("   signing enrolment code {code}")
                } else {
                    String::new()
                };
                lines.push(format!("  {username:<18} {password}   {display_name}{enrolment}"));
            }
            let text = lines.join("\n") + "\n";
            let path = data_dir.join("demo-credentials.txt");
            write_private(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!("{text}(also written to {})", path.display());
            site
        }
    };
    let scratch = data_dir.join("demo-studies");
    let mut files = telediag_sample_data::write_demo_studies(&scratch)?;
    files.push(telediag_sample_data::write_demo_ecg(&scratch)?);
    let origin = Origin { site_id: site.id, calling_ae: Some("DEMO_CT".into()) };
    let mut stored = 0;
    for file in &files {
        let result = archive.import_file(file, &origin).await.with_context(|| format!("importing {}", file.display()))?;
        if result.outcome == telediag_archive::Outcome::Stored {
            stored += 1;
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    if stored > 0 {
        tracing::info!(objects = stored, site = DEMO_SITE, "demo studies loaded");
    }
    Ok(())
}

fn hex_password() -> String {
    let bytes: [u8; 9] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chrono_free_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix time {secs}")
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::File::options();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(text.as_bytes())
}
