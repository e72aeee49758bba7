//! The render pipeline: the archive's job queue wired to `crates/imaging`
//! (images) and `crates/ecg` (waveforms). Every stored object version
//! queues an `instance.render` job in the same transaction as its index
//! row; [`run`] claims them,
//! renders on the imaging pool (bounded, so a 5,000-instance study waits in
//! the queue, not in memory), stores the thumbnail and preview as derived
//! objects and records them, or records why the object is undecodable. A
//! restart resumes: claims are leases. Receiving comes first: see
//! [`give_way_to_senders`].

use std::sync::Arc;
use std::time::Duration;

use telediag_archive::Archive;
use telediag_archive::SopInstanceUid;
use telediag_archive::db::now_ms;
use telediag_archive::derived::{DerivedKind, DerivedRecord, derived_key};
use telediag_archive::jobs::{Job, JobKind, JobPayload, Settled};
use telediag_archive::store::{ObjectKey, ObjectReader};
use tokio::sync::{Semaphore, oneshot, watch};

/// Longest side of instance thumbnails.
const THUMBNAIL_SIZE: u32 = 256;

/// The wall clock as the pipeline reads it (a job's age); injected so that
/// the scheduling is tested on a clock the test moves, not on the machine's.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// How long a claimed job is this worker's: a worker that dies mid-job has
/// its jobs taken by another once their leases lapse.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Renders what `archive` queues, on `threads` background threads, until
/// `stop` turns true. Claims are leases of `lease`, longer than any one
/// render takes.
pub async fn run(archive: Archive, threads: usize, lease: Duration, stop: watch::Receiver<bool>) {
    run_with_clock(archive, threads, lease, stop, Arc::new(SystemClock)).await
}

/// [`run`] on `clock`.
pub async fn run_with_clock(archive: Archive, threads: usize, lease: Duration, mut stop: watch::Receiver<bool>, clock: Arc<dyn Clock>) {
    let pool = match telediag_imaging::ImagingPool::new(threads, telediag_imaging::Priority::Background) {
        Ok(pool) => Arc::new(pool),
        Err(e) => {
            tracing::error!(error = %e, "imaging pipeline not started");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(threads * 2));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            _ = stop.changed() => break,
        };
        let job = match archive.database().claim_job(&[JobKind::InstanceRender], &worker_name(), lease).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "cannot claim pipeline jobs");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (archive, pool, mut stop, clock) = (archive.clone(), pool.clone(), stop.clone(), clock.clone());
        tasks.spawn(async move {
            give_way_to_senders(&archive, job.queued_at_ms, &mut stop, clock.as_ref()).await;
            process(&archive, &pool, job).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Who holds a job's lease (`jobs.locked_by`): this process, on this host.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("pipeline@{}:{}", host.trim(), std::process::id())
}

/// While two or more objects arrive at once, the senders are what keeps the
/// CPU busy: a render job (idle-class, but its file writes and bookkeeping
/// are not) waits for them. A lone sender leaves the CPU idle while each
/// object is flushed, so it is not waited for: rendering beside it keeps a
/// study's thumbnails within a second of its last object (see
/// bench/README.md). The wait is bounded by the job's age, not by the wait
/// itself: no job is held once it has been queued for [`MAX_GIVE_WAY`], so
/// under steady traffic from many sites (which over county links keeps
/// objects arriving for most of the day while the CPU idles) rendering runs
/// that far behind the arrivals at full speed rather than one job per wait.
/// Stopping the service ends the wait; the job is then rendered, not
/// abandoned.
async fn give_way_to_senders(archive: &Archive, queued_at_ms: i64, stop: &mut watch::Receiver<bool>, clock: &dyn Clock) {
    let waited = Duration::from_millis(clock.now_ms().saturating_sub(queued_at_ms).max(0) as u64);
    let Some(left) = MAX_GIVE_WAY.checked_sub(waited) else { return };
    let until = tokio::time::Instant::now() + left;
    while archive.objects_arriving() >= 2 && !*stop.borrow() && tokio::time::Instant::now() < until {
        tokio::select! {
            _ = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_millis(20))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The longest a render job is held back for senders, counted from when it
/// was queued.
const MAX_GIVE_WAY: Duration = Duration::from_secs(2);

async fn process(archive: &Archive, pool: &telediag_imaging::ImagingPool, job: Job) {
    let db = archive.database();
    let JobPayload::InstanceRender { sop_instance_uid, object_key } = &job.payload else {
        let _ = db.fail_job(job.lease(), &format!("expected an instance.render job, found {:?}", job.payload.kind()), None).await;
        return;
    };
    let (Ok(sop), Ok(key)) = (SopInstanceUid::parse(sop_instance_uid), ObjectKey::new(object_key.clone())) else {
        let _ = db.fail_job(job.lease(), "payload holds an invalid UID or key", None).await;
        return;
    };
    let source = Source { sop, original: key };
    let outcome = match open_original(archive, &source.original).await {
        Ok((_, Kind::Waveform)) => ecg(archive, pool, &source).await,
        Ok((reader, Kind::Image)) => image(archive, pool, &source, reader).await,
        Err(e) => Err(e),
    };
    let recorded = match outcome {
        Ok(records) => db.record_derived(job.lease(), &records).await,
        Err(e) => db.fail_job(job.lease(), &e, Some(Duration::from_secs(30))).await,
    };
    match recorded {
        Ok(Settled::Recorded) => {}
        Ok(Settled::LeaseLost) => {
            tracing::warn!(job = job.id, "a render job's lease ran out before it finished; its new holder records it")
        }
        Err(e) => tracing::warn!(job = job.id, error = %e, "cannot record a render job's outcome; it runs again when its lease ends"),
    }
}

/// Renders an image's thumbnail and preview from its opened original and
/// stores them, or says why it cannot be rendered. A store that fails
/// while the decoder reads is the store's failure (the job is retried),
/// not the object's.
async fn image(
    archive: &Archive,
    pool: &telediag_imaging::ImagingPool,
    source: &Source,
    original: ObjectReader,
) -> Result<Vec<DerivedRecord>, String> {
    // Imaging reads only the first frame's bytes, so a multi-gigabyte cine
    // loop is rendered in one frame's memory.
    let store_failure = Arc::new(std::sync::Mutex::new(None));
    let watched = Watched { inner: original, failure: store_failure.clone() };
    let rendered = on_pool(pool, move || telediag_imaging::derive_object(std::io::BufReader::new(watched), THUMBNAIL_SIZE))
        .await
        .unwrap_or_else(|| Err(telediag_imaging::RenderError::Decode("render task lost".into())));
    if let Some(failure) = store_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(format!("the object store failed while the original was read: {failure}"));
    }
    match rendered {
        Ok(derived) => store(archive, source, &derived).await,
        Err(e) => {
            tracing::info!(sop_instance_uid = %source.sop, reason = %e, "undecodable");
            Ok(undecodable(&source.sop, &[DerivedKind::Thumbnail, DerivedKind::Preview], &e.to_string()))
        }
    }
}

/// An original being read for rendering, remembering the first error its
/// store gave: a decoder reports any read error as a broken object.
struct Watched {
    inner: ObjectReader,
    failure: Arc<std::sync::Mutex<Option<String>>>,
}

impl Watched {
    fn watch<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert_with(|| e.to_string());
        }
        result
    }
}

impl std::io::Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let result = self.inner.read(buf);
        self.watch(result)
    }
}

impl std::io::Seek for Watched {
    fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
        let result = self.inner.seek(position);
        self.watch(result)
    }
}

/// Runs `work` on the imaging pool and waits for its result: `None` if the
/// task died without one (a panic in a decoder).
async fn on_pool<T: Send + 'static>(pool: &telediag_imaging::ImagingPool, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = oneshot::channel();
    pool.spawn(move || {
        let _ = done.send(work());
    });
    result.await.ok()
}

/// What a stored object is, for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Waveform storage SOP classes (ECG, hemodynamic, ...): analysed as
    /// ECGs, not rendered as images.
    Waveform,
    Image,
}

/// Opens a job's original once, reads what it is from its Part 10 header
/// and hands it back rewound, so an image is rendered from the same reader
/// (on a bucket: no second HEAD and GET). An object the store cannot open
/// is an error (retried), not an image.
async fn open_original(archive: &Archive, key: &ObjectKey) -> Result<(ObjectReader, Kind), String> {
    use std::io::{Seek, SeekFrom};
    let (archive, key) = (archive.clone(), key.to_string());
    tokio::task::spawn_blocking(move || {
        let mut reader = archive.read_object(&key).map_err(|e| e.to_string())?;
        let waveform = telediag_archive::part10::read_header(std::io::BufReader::new(&mut reader))
            .is_ok_and(|(meta, _)| meta.sop_class_uid.starts_with(telediag_archive::uid::WAVEFORM_SOP_CLASS_PREFIX));
        reader.seek(SeekFrom::Start(0)).map_err(|e| format!("cannot rewind {key}: {e}"))?;
        Ok((reader, if waveform { Kind::Waveform } else { Kind::Image }))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Analyses an ECG and stores its measurements (JSON), its 12-lead page
/// (SVG, and PNG as the preview) and a thumbnail, or why it cannot be read.
async fn ecg(archive: &Archive, pool: &telediag_imaging::ImagingPool, source: &Source) -> Result<Vec<DerivedRecord>, String> {
    let sop = &source.sop;
    use telediag_ecg::render::{Layout, PAGE_PNG_WIDTH, THUMBNAIL_PNG_WIDTH, png, svg};
    let bytes = archive.read_small_object(source.original.as_str()).await.map_err(|e| e.to_string())?;
    let made = on_pool(pool, move || {
        telediag_ecg::read_bytes(&bytes).map_err(|e| e.to_string()).and_then(|record| {
            let analysis = telediag_ecg::analyse(&record);
            let page = svg(&record, &analysis, Layout::ThreeByFour);
            let json = serde_json::to_vec_pretty(&analysis).map_err(|e| e.to_string())?;
            let page_png = png(&page, PAGE_PNG_WIDTH).map_err(|e| e.to_string())?;
            let thumb = png(&page, THUMBNAIL_PNG_WIDTH).map_err(|e| e.to_string())?;
            Ok([
                (DerivedKind::Thumbnail, "png", "image/png", thumb),
                (DerivedKind::Preview, "png", "image/png", page_png),
                (DerivedKind::EcgPage, "svg", "image/svg+xml", page.into_bytes()),
                (DerivedKind::EcgMeasurements, "json", "application/json", json),
            ])
        })
    })
    .await
    .ok_or_else(|| "ECG task lost".to_string())?;
    let objects = match made {
        Ok(objects) => objects,
        Err(reason) => {
            tracing::info!(sop_instance_uid = %sop, %reason, "ECG not analysable");
            let kinds = [DerivedKind::EcgMeasurements, DerivedKind::EcgPage, DerivedKind::Preview, DerivedKind::Thumbnail];
            return Ok(undecodable(sop, &kinds, &reason));
        }
    };
    let mut records = Vec::with_capacity(objects.len());
    for (kind, extension, content_type, bytes) in objects {
        records.push(put_derived(archive, source, DerivedObject { kind, extension, content_type, bytes, dimensions: None }).await?);
    }
    Ok(records)
}

/// The stored object a job renders.
struct Source {
    sop: SopInstanceUid,
    /// Its key in the store; derived objects are keyed beside it.
    original: ObjectKey,
}

/// One derived object to store: what it is and, for images, its size.
struct DerivedObject {
    kind: DerivedKind,
    extension: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
    /// Width, height and the source's frame count, for images.
    dimensions: Option<(u32, u32, u32)>,
}

/// Writes a derived object (rebuildable, so not fsynced) and returns its
/// record, with its ETag.
async fn put_derived(archive: &Archive, source: &Source, object: DerivedObject) -> Result<DerivedRecord, String> {
    let key = derived_key(&source.original, &source.sop, object.kind, object.extension).map_err(|e| e.to_string())?;
    let size_bytes = object.bytes.len() as i64;
    let etag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(&object.bytes));
    archive.put_rebuildable(&key, object.bytes).await.map_err(|e| e.to_string())?;
    Ok(DerivedRecord {
        sop_instance_uid: source.sop.to_string(),
        kind: object.kind.as_str().into(),
        object_key: Some(key.to_string()),
        content_type: Some(object.content_type.into()),
        width: object.dimensions.map(|(w, _, _)| i64::from(w)),
        height: object.dimensions.map(|(_, h, _)| i64::from(h)),
        frames: object.dimensions.map(|(_, _, f)| i64::from(f)),
        size_bytes: Some(size_bytes),
        etag: Some(etag),
        error: None,
    })
}

/// The records saying why none of `kinds` can be made for `sop`.
fn undecodable(sop: &SopInstanceUid, kinds: &[DerivedKind], reason: &str) -> Vec<DerivedRecord> {
    kinds.iter().map(|&kind| DerivedRecord::undecodable(sop, kind, reason)).collect()
}

async fn store(archive: &Archive, source: &Source, derived: &telediag_imaging::Derived) -> Result<Vec<DerivedRecord>, String> {
    let mut records = Vec::with_capacity(2);
    for (kind, image) in [(DerivedKind::Thumbnail, &derived.thumbnail), (DerivedKind::Preview, &derived.preview)] {
        let (extension, content_type) = match image.format {
            telediag_imaging::ThumbnailFormat::Jpeg => ("jpg", "image/jpeg"),
            telediag_imaging::ThumbnailFormat::Png => ("png", "image/png"),
        };
        let dimensions = Some((image.width, image.height, derived.frames));
        records.push(
            put_derived(archive, source, DerivedObject { kind, extension, content_type, bytes: image.bytes.clone(), dimensions }).await?,
        );
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use telediag_archive::{ArchiveConfig, Durability, FileMeta, NewSite};

    fn meta(sop: &str) -> FileMeta {
        FileMeta {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: sop.into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            source_ae_title: None,
        }
    }

    /// The test's clock: tokio's paused time, from a fixed epoch.
    struct PausedClock {
        epoch_ms: i64,
        start: tokio::time::Instant,
    }

    impl Clock for PausedClock {
        fn now_ms(&self) -> i64 {
            self.epoch_ms + self.start.elapsed().as_millis() as i64
        }
    }

    /// A lone sender is not waited for; a job just queued waits while two
    /// objects arrive and goes on when one is left; a job queued long enough
    /// ago does not wait at all, however busy the senders; stopping ends the
    /// wait. On paused time: the durations are exact, not windows.
    #[tokio::test]
    async fn rendering_gives_way_to_senders_for_a_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let config = ArchiveConfig {
            data_dir: dir.path().to_owned(),
            database_url: None,
            durability: Durability::Full,
            storage: Default::default(),
        };
        let archive = Archive::open(&config).await.unwrap();
        let site =
            archive.database().add_site(&NewSite { name: "县医院".into(), ae_titles: vec!["CT1".into()], networks: vec![] }).await.unwrap();
        // The database is open; from here on only timers run, on paused time.
        tokio::time::pause();
        let clock = std::sync::Arc::new(PausedClock { epoch_ms: 1_795_430_000_000, start: tokio::time::Instant::now() });
        let (_stop_tx, stop) = watch::channel(false);
        let ms_ago = |ms: i64| clock.now_ms() - ms;
        let give_way = |queued_at_ms: i64, mut stop: watch::Receiver<bool>| {
            let (archive, clock) = (archive.clone(), clock.clone());
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                give_way_to_senders(&archive, queued_at_ms, &mut stop, clock.as_ref()).await;
                started.elapsed()
            })
        };

        let _lone = archive.begin(meta("1.2.3.4.5"), site.id).unwrap();
        assert_eq!(give_way(ms_ago(0), stop.clone()).await.unwrap(), Duration::ZERO, "a lone sender is not waited for");

        let second = archive.begin(meta("1.2.3.4.6"), site.id).unwrap();
        let waiting = give_way(ms_ago(0), stop.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "two objects arriving: a fresh job waits");
        drop(second);
        let waited = waiting.await.unwrap();
        assert!(
            waited >= Duration::from_millis(300) && waited <= Duration::from_millis(320),
            "goes on once one sender is left: {waited:?}"
        );

        let _second = archive.begin(meta("1.2.3.4.6"), site.id).unwrap();
        assert_eq!(give_way(ms_ago(2_500), stop.clone()).await.unwrap(), Duration::ZERO, "a job queued 2.5 s ago is not held");
        let waited = give_way(ms_ago(1_600), stop.clone()).await.unwrap();
        // Tokio's timer rounds each deadline up to its next millisecond.
        assert!(
            waited >= Duration::from_millis(400) && waited <= Duration::from_millis(402),
            "a job queued 1.6 s ago is held until it is 2 s old, held {waited:?}"
        );

        let (stop_tx, stop) = watch::channel(false);
        let waiting = give_way(ms_ago(0), stop);
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop_tx.send(true).unwrap();
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_millis(100) && waited <= Duration::from_millis(120), "stopping ends the wait: {waited:?}");
    }
}
