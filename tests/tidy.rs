//! House rules from ARCHITECTURE.md, checked on every `cargo test` (after
//! rust-analyzer's tidy): the dependency arrows between crates, both in the
//! manifests and in the source's paths (its "knows nothing of" lines), a
//! `//!` tour at the top of every library, and no patient data in log
//! statements.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value.get("dependencies").and_then(|d| d.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn crates_depend_only_downwards() {
    // (crate, what it must not know)
    let rules: &[(&str, &[&str])] = &[
        ("crates/archive", &["pacs-gateway", "telediag-worklist", "axum", "dicom-ul", "dicom-pixeldata", "image"]),
        ("crates/ecg", &["telediag-archive", "telediag-imaging", "pacs-gateway", "telediag-worklist", "axum", "sqlx", "tokio", "dicom-ul"]),
        (
            "crates/reports",
            &[
                "telediag-archive",
                "telediag-imaging",
                "telediag-ecg",
                "pacs-gateway",
                "telediag-worklist",
                "axum",
                "sqlx",
                "tokio",
                "dicom-ul",
            ],
        ),
        ("crates/imaging", &["telediag-archive", "pacs-gateway", "telediag-worklist", "axum", "sqlx", "tokio"]),
        ("crates/pipeline", &["pacs-gateway", "telediag-worklist", "telediag-reports", "axum", "dicom-ul"]),
        (
            "crates/workflow",
            &["pacs-gateway", "telediag-worklist", "telediag-imaging", "telediag-ecg", "axum", "hyper", "hyper-util", "dicom-ul", "argon2"],
        ),
        ("pacs-gateway", &["telediag-worklist", "axum", "dicom-pixeldata", "image"]),
        ("worklist", &["pacs-gateway", "dicom-ul"]),
        ("sample-data", &["telediag-archive", "pacs-gateway", "telediag-worklist"]),
    ];
    for (dir, forbidden) in rules {
        let deps = dependencies(&root().join(dir).join("Cargo.toml"));
        for f in *forbidden {
            assert!(!deps.iter().any(|d| d == f), "{dir} depends on {f}, which ARCHITECTURE.md forbids");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_library_opens_with_a_tour() {
    for dir in [
        "crates/archive",
        "crates/ecg",
        "crates/imaging",
        "crates/pipeline",
        "crates/reports",
        "crates/workflow",
        "pacs-gateway",
        "worklist",
        "sample-data",
        "fuzz",
    ] {
        let lib = std::fs::read_to_string(root().join(dir).join("src/lib.rs")).unwrap();
        assert!(lib.starts_with("//!"), "{dir}/src/lib.rs does not open with a //! doc comment");
    }
}

/// A crate's code (its tests aside) with comments removed: what it uses.
/// `dir` is the crate's folder, `.` for the binary.
fn library_code(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join(dir).join("src"), &mut files);
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            (file, code)
        })
        .collect()
}

/// ARCHITECTURE.md's "knows nothing of" lines, as the paths a crate's code
/// may not name: a manifest can allow a crate for one purpose while the
/// code reaches it for another.
#[test]
fn crates_know_only_what_the_map_says() {
    let rules: &[(&str, &str, &[&str])] = &[
        ("crates/archive", "DIMSE, HTTP or pixels", &["dicom_ul::", "axum::", "http::", "StatusCode", "dimse_status", "decode_pixel"]),
        ("crates/imaging", "storage, DIMSE or HTTP", &["telediag_archive", "sqlx::", "dicom_ul::", "axum::"]),
        ("crates/ecg", "HTTP, DIMSE or storage", &["axum::", "sqlx::", "dicom_ul::", "telediag_archive"]),
        ("crates/dicomweb", "HTTP sessions or sites", &["telediag_worklist", "Cookie", "session"]),
        (
            "crates/reports",
            "HTTP, users, read requests or storage, and reads no files",
            &["axum::", "sqlx::", "tokio::", "std::fs", "File::open", "read_to_string", "telediag_archive"],
        ),
        ("pacs-gateway", "HTTP or the worklist", &["axum::", "telediag_worklist"]),
        (
            "crates/workflow",
            "HTTP, passwords, PDFs, keys or object bytes",
            &[
                "axum::",
                "http::",
                "StatusCode",
                "hyper",
                "argon2",
                "sign_pdf",
                "SigningIdentity",
                "ReportForm",
                "path_of",
                "std::fs",
                "tokio::fs",
            ],
        ),
    ];
    for (dir, knows_nothing_of, paths) in rules {
        for (file, code) in library_code(dir) {
            for path in *paths {
                assert!(
                    !code.contains(path),
                    "{}: names {path:?}, but ARCHITECTURE.md says {dir} knows nothing of {knows_nothing_of}",
                    file.display()
                );
            }
        }
    }
}

/// The workflow's tables are written by the workflow alone: a state
/// change anywhere else would bypass its checks and its history.
/// Which crate writes which tables: ARCHITECTURE.md's "One owner per
/// table". Other crates ask the owner.
const TABLE_OWNERS: &[(&str, &[&str])] = &[
    (
        "crates/archive",
        &[
            "sites",
            "site_ae_titles",
            "site_networks",
            "site_certificates",
            "patients",
            "studies",
            "series",
            "instances",
            "jobs",
            "derived",
            "users",
            "sessions",
            "uid_collisions",
            "uid_claims",
            "sync_points",
        ],
    ),
    (
        "crates/workflow",
        &["read_requests", "request_events", "reports", "critical_findings", "report_downloads", "reader_modalities", "reader_sites"],
    ),
    ("worklist", &["signing_identities", "signing_enrolments", "retired_certificates", "audit_log"]),
];

/// Writes one crate makes to another's table, each for a stated reason.
const SHARED_WRITES: &[(&str, &str)] = &[
    // A site's reading policy (assignment, signatures, critical webhook)
    // is the workflow's, kept as columns of the archive's `sites`.
    ("crates/workflow", "UPDATE SITES SET ASSIGNMENT_MODE"),
];

#[test]
fn every_table_is_written_by_its_owner_alone() {
    let crates =
        [".", "worklist", "pacs-gateway", "crates/archive", "crates/pipeline", "crates/dicomweb", "crates/workflow", "crates/reports"];
    for dir in crates {
        let files = library_code(dir);
        for (file, code) in files {
            let code = code.to_uppercase().split_whitespace().collect::<Vec<_>>().join(" ");
            for (owner, tables) in TABLE_OWNERS.iter().filter(|(owner, _)| *owner != dir) {
                for table in tables.iter().map(|t| t.to_uppercase()) {
                    for write in [format!("UPDATE {table} "), format!("INSERT INTO {table} "), format!("DELETE FROM {table} ")] {
                        let shared = |at: usize| SHARED_WRITES.iter().any(|(d, s)| *d == dir && code[at..].starts_with(s));
                        let stray = code.match_indices(&write).any(|(at, _)| !shared(at));
                        assert!(!stray, "{}: writes {table} ({write:?}), which {owner} owns", file.display());
                    }
                }
            }
        }
    }
}

/// The database is reached through its owners' modules: the archive's
/// (index, queue, accounts, sites), the workflow crate, and in the worklist
/// the signing keys' and the audit chain's. Everything else — the binary,
/// HTTP handlers, the pipeline, DICOMweb — calls their typed methods and
/// writes no SQL of its own.
#[test]
fn sql_is_written_only_by_the_owners_of_tables() {
    let owners_in_worklist = ["signing/mod.rs", "signing/enrolment.rs", "audit.rs", "error.rs"];
    for dir in [".", "worklist", "pacs-gateway", "crates/pipeline", "crates/dicomweb", "crates/reports"] {
        let files = library_code(dir);
        for (file, code) in files {
            let relative = file.strip_prefix(root().join(dir).join("src")).unwrap_or(&file).to_string_lossy().into_owned();
            if dir == "worklist" && owners_in_worklist.contains(&relative.as_str()) {
                continue;
            }
            for reach in ["sqlx::", ".pool()"] {
                assert!(!code.contains(reach), "{}: reaches the database itself ({reach}); ask the table's owner", file.display());
            }
        }
    }
}

/// Object bytes are reached by key through the archive (`objects.rs`),
/// never by a path into its store or its staging directory: the store
/// behind the archive may be a bucket.
#[test]
fn only_the_archive_touches_object_storage() {
    for dir in ["worklist", "pacs-gateway", "crates/pipeline", "crates/dicomweb", "crates/workflow"] {
        for (file, code) in library_code(dir) {
            for path in ["LocalStore", "BlobStore", "path_of", "\"objects/\"", "staging/", "ObjectStore"] {
                assert!(
                    !code.contains(path),
                    "{}: names {path:?}; objects are read and written through the archive, by key",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn log_statements_carry_no_patient_data() {
    let mut files = Vec::new();
    for dir in [
        "src",
        "crates/archive/src",
        "crates/ecg/src",
        "crates/imaging/src",
        "crates/pipeline/src",
        "crates/reports/src",
        "crates/workflow/src",
        "pacs-gateway/src",
        "worklist/src",
        "sample-data/src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let forbidden = ["patient", "name = ", "birth", ".patient_id"];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_log = 0usize;
        for (number, line) in text.lines().enumerate() {
            if ["tracing::info!", "tracing::warn!", "tracing::error!", "tracing::debug!", "tracing::trace!"]
                .iter()
                .any(|m| line.contains(m))
            {
                in_log = 1;
            }
            if in_log > 0 {
                let lower = line.to_lowercase();
                for word in forbidden {
                    assert!(
                        !lower.contains(word) || lower.contains("site_name") || lower.contains("username"),
                        "{}:{}: a log statement mentions {word:?}: {line}",
                        file.display(),
                        number + 1
                    );
                }
                if line.contains(");") {
                    in_log = 0;
                }
            }
        }
    }
}
