//! `/dicom-web`: DICOMweb over the archive, for OHIF, Weasis, AI tools and
//! regional platforms (PS3.18: QIDO-RS, WADO-RS, STOW-RS).
//!
//! What the requests mean lives in `telediag-dicomweb`; here is what every
//! route of this service does: the caller is authenticated (bearer token or
//! session cookie) and audited like every other route, objects are looked
//! up in the caller's scope first — another site's study, series or
//! instance is 404 at every level and never listed — and responses stream.
//! Stored objects are read through the archive (`Archive::read_object`),
//! never by path, so a store other than local files needs no change here.

use std::io::Read;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use telediag_archive::search::{Condition, InstanceMatch, Key, Level, MAX_RESULTS, Matcher, Search};
use telediag_archive::{Origin, StudyUid};
use telediag_dicomweb::media::{self, FrameEncoding};
use telediag_dicomweb::metadata::{self, InstancePath};
use telediag_dicomweb::multipart::Multipart;
use telediag_dicomweb::qido::{self, Results};
use telediag_dicomweb::stow;
use telediag_imaging::{ObjectFrames, RenderError};

use crate::AppState;
use crate::auth::{CurrentUser, Scope};
use crate::error::ApiError;

/// The DICOMweb routes, nested under `/dicom-web`; pages of `cors_origins`
/// may call them from the browser.
pub fn router(cors_origins: &[String]) -> Router<AppState> {
    let stow_limit = axum::extract::DefaultBodyLimit::disable();
    let routes = Router::new()
        .route("/studies", get(search_studies).post(store).layer(stow_limit))
        .route("/series", get(search_all_series))
        .route("/instances", get(search_all_instances))
        .route("/studies/{study}", get(retrieve).post(store_into_study).layer(stow_limit))
        .route("/studies/{study}/metadata", get(metadata_of))
        .route("/studies/{study}/rendered", get(rendered))
        .route("/studies/{study}/thumbnail", get(thumbnail))
        .route("/studies/{study}/series", get(search_series_within))
        .route("/studies/{study}/instances", get(search_instances_within))
        .route("/studies/{study}/series/{series}", get(retrieve))
        .route("/studies/{study}/series/{series}/metadata", get(metadata_of))
        .route("/studies/{study}/series/{series}/rendered", get(rendered))
        .route("/studies/{study}/series/{series}/thumbnail", get(thumbnail))
        .route("/studies/{study}/series/{series}/instances", get(search_instances_within))
        .route("/studies/{study}/series/{series}/instances/{instance}", get(retrieve))
        .route("/studies/{study}/series/{series}/instances/{instance}/metadata", get(metadata_of))
        .route("/studies/{study}/series/{series}/instances/{instance}/rendered", get(rendered))
        .route("/studies/{study}/series/{series}/instances/{instance}/thumbnail", get(thumbnail))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", get(frames))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered", get(rendered))
        .route("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail", get(thumbnail))
        .route("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{*path}", get(bulk_data));
    if cors_origins.is_empty() { routes } else { routes.layer(cors(cors_origins)) }
}

/// CORS for a viewer served from another origin (a hospital's own OHIF,
/// say) that calls DICOMweb with a bearer token. Preflights are answered
/// here, before any authentication; the answers themselves are only readable
/// by the named origins. No credentials mode: cookies stay same-origin.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    // Checked at start (`config::check_cors_origin`); a value that is not a header is skipped.
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD, axum::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE])
        // STOW's Warning and a retrieve's Content-Location are part of the answer.
        .expose_headers([header::WARNING, header::CONTENT_LOCATION, header::CONTENT_LENGTH])
        .max_age(std::time::Duration::from_secs(600))
}

/// What a URL names: a study, or a series, an instance, frames of it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Target {
    study: String,
    series: Option<String>,
    instance: Option<String>,
    /// `1,2,3` as in the URL.
    frames: Option<String>,
}

impl Target {
    fn qido_scope(&self) -> qido::Scope<'_> {
        qido::Scope { study: Some(&self.study), series: self.series.as_deref() }
    }

    fn instance_url(&self, base: &str) -> String {
        format!(
            "{base}/studies/{}/series/{}/instances/{}",
            self.study,
            self.series.as_deref().unwrap_or_default(),
            self.instance.as_deref().unwrap_or_default()
        )
    }
}

/// The DICOMweb root as clients are told it (Retrieve URL, bulk data URIs):
/// the configured public URL, never the request's Host header, which
/// clients send without the port (python dicomweb-client does).
fn base(state: &AppState) -> String {
    format!("{}/dicom-web", state.config.public_url.trim_end_matches('/'))
}

fn site_of(user: &CurrentUser) -> Result<Option<i64>, ApiError> {
    Ok(match user.scope()? {
        Scope::Site(site) => Some(site),
        Scope::AllSites => None,
    })
}

type Params = Query<Vec<(String, String)>>;

// ---- QIDO-RS -----------------------------------------------------------

async fn search_studies(State(state): State<AppState>, user: CurrentUser, Query(params): Params) -> Result<Response, ApiError> {
    search(&state, &user, Level::Study, qido::Scope::default(), &params).await
}

async fn search_all_series(State(state): State<AppState>, user: CurrentUser, Query(params): Params) -> Result<Response, ApiError> {
    search(&state, &user, Level::Series, qido::Scope::default(), &params).await
}

async fn search_all_instances(State(state): State<AppState>, user: CurrentUser, Query(params): Params) -> Result<Response, ApiError> {
    search(&state, &user, Level::Instance, qido::Scope::default(), &params).await
}

async fn search_series_within(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    exists(&state, &user, &target).await?;
    search(&state, &user, Level::Series, target.qido_scope(), &params).await
}

async fn search_instances_within(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    exists(&state, &user, &target).await?;
    search(&state, &user, Level::Instance, target.qido_scope(), &params).await
}

async fn search(
    state: &AppState,
    user: &CurrentUser,
    level: Level,
    scope: qido::Scope<'_>,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let mut query = qido::parse(params, level, &scope).map_err(|e| ApiError::bad_request(e.to_string()))?;
    query.search.site_id = site_of(user)?;
    let db = state.archive.database();
    let base = base(state);
    let results = Results { base: &base, include: &query.include, scope: &scope };
    let (body, rows, more) = match level {
        Level::Study => {
            let found = db.search_studies(&query.search).await?;
            (results.studies(&found.rows), found.rows.len(), found.more)
        }
        Level::Series => {
            let found = db.search_series(&query.search).await?;
            (results.series(&found.rows), found.rows.len(), found.more)
        }
        Level::Instance => {
            let found = db.search_instances(&query.search).await?;
            (results.instances(&found.rows), found.rows.len(), found.more)
        }
    };
    if more {
        let total = db.count_matches(&query.search, level).await?;
        let remaining = total.saturating_sub(i64::from(query.search.offset) + rows as i64);
        query.warnings.push(format!("There are {remaining} additional results that can be requested"));
    }
    let mut headers = HeaderMap::new();
    for warning in &query.warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 {base}: {warning}")) {
            headers.append(header::WARNING, value);
        }
    }
    if rows == 0 {
        // PS3.18 10.6.3.2: no match is 204 with no payload.
        return Ok((StatusCode::NO_CONTENT, headers).into_response());
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    Ok((headers, body).into_response())
}

// ---- Looking objects up in the caller's scope ---------------------------

/// 404 unless the study (or series) a search URL names is in the caller's
/// scope: one row looked up, not the study's every instance.
async fn exists(state: &AppState, user: &CurrentUser, target: &Target) -> Result<(), ApiError> {
    let mut conditions = vec![Condition { key: Key::StudyInstanceUid, matcher: Matcher::Single(target.study.clone()) }];
    let db = state.archive.database();
    let found = match &target.series {
        Some(series) => {
            conditions.push(Condition { key: Key::SeriesInstanceUid, matcher: Matcher::Single(series.clone()) });
            let search = Search { level: Level::Series, site_id: site_of(user)?, conditions, limit: 1, offset: 0 };
            !db.search_series(&search).await?.rows.is_empty()
        }
        None => {
            let search = Search { level: Level::Study, site_id: site_of(user)?, conditions, limit: 1, offset: 0 };
            !db.search_studies(&search).await?.rows.is_empty()
        }
    };
    if found { Ok(()) } else { Err(ApiError::not_found(if target.series.is_some() { "series" } else { "study" })) }
}

/// The newest versions of the instances a URL names (a study, a series, or
/// one instance), in the caller's scope; 404 when there are none.
async fn find(state: &AppState, user: &CurrentUser, target: &Target) -> Result<Vec<InstanceMatch>, ApiError> {
    let mut conditions = vec![Condition { key: Key::StudyInstanceUid, matcher: Matcher::Single(target.study.clone()) }];
    if let Some(series) = &target.series {
        conditions.push(Condition { key: Key::SeriesInstanceUid, matcher: Matcher::Single(series.clone()) });
    }
    if let Some(instance) = &target.instance {
        conditions.push(Condition { key: Key::SopInstanceUid, matcher: Matcher::Single(instance.clone()) });
    }
    let mut search = Search { level: Level::Instance, site_id: site_of(user)?, conditions, limit: MAX_RESULTS, offset: 0 };
    let mut all = Vec::new();
    loop {
        let found = state.archive.database().search_instances(&search).await?;
        all.extend(found.rows);
        if !found.more {
            break;
        }
        search.offset += MAX_RESULTS;
    }
    if all.is_empty() {
        let what = match (&target.series, &target.instance) {
            (_, Some(_)) => "instance",
            (Some(_), None) => "series",
            _ => "study",
        };
        return Err(ApiError::not_found(what));
    }
    Ok(all)
}

fn accept(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn not_acceptable(e: media::NotAcceptable) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, e.0)
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the stored object cannot be read: {e}"))
}

// ---- WADO-RS: instances -------------------------------------------------

/// The instances a URL names as stored, one part each, streamed: a study
/// of any size holds one 256 KiB chunk per response in memory at a time.
async fn retrieve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let instances = find(&state, &user, &target).await?;
    let syntaxes: Vec<&str> = instances.iter().map(|i| i.transfer_syntax_uid.as_str()).collect();
    media::negotiate_instances(accept(&headers).as_deref(), &syntaxes).map_err(not_acceptable)?;
    let multipart = Multipart::new();
    let content_type = multipart.content_type("application/dicom");
    let (archive, base) = (state.archive.clone(), base(&state));
    // The first object is opened before the status is sent, so that a store
    // that cannot answer is a 503 with its reason, not a 200 cut short.
    let first = match instances.first() {
        Some(i) => {
            let (archive, key) = (archive.clone(), i.object_key.clone());
            let opened = tokio::task::spawn_blocking(move || archive.read_object(&key)).await;
            Some(opened.map_err(unavailable)?.map_err(unavailable)?)
        }
        None => None,
    };
    let body = stream_body(move |send| {
        let mut first = first;
        for i in &instances {
            let location =
                format!("{base}/studies/{}/series/{}/instances/{}", i.series.study.study_uid, i.series.series_uid, i.sop_instance_uid);
            let part_type = format!("application/dicom; transfer-syntax={}", i.transfer_syntax_uid);
            send(Ok(multipart.part_header(&part_type, Some(&location), Some(i.size_bytes as u64))))?;
            let opened = match first.take() {
                Some(reader) => Ok(reader),
                None => archive.read_object(&i.object_key),
            };
            let mut reader = match opened {
                Ok(reader) => reader,
                Err(e) => {
                    tracing::error!(sop_instance_uid = %i.sop_instance_uid, error = %e, "cannot read a stored object for WADO-RS");
                    return send(Err(std::io::Error::other(e.to_string())));
                }
            };
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let n = match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return send(Err(e)),
                };
                send(Ok(buffer[..n].to_vec()))?;
            }
            send(Ok(multipart.part_end().to_vec()))?;
        }
        send(Ok(multipart.closing()))
    });
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The client went away: stop producing.
struct Gone;

/// A response body produced on the blocking pool by `produce`, which hands
/// each chunk (or the error that ends the body) to `send`; at most four
/// chunks wait for the client, so memory stays bounded whatever the size.
fn stream_body(
    produce: impl FnOnce(&mut dyn FnMut(std::io::Result<Vec<u8>>) -> Result<(), Gone>) -> Result<(), Gone> + Send + 'static,
) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut send = |chunk: std::io::Result<Vec<u8>>| {
            let failed = chunk.is_err();
            sender.blocking_send(chunk.map(Bytes::from)).map_err(|_| Gone)?;
            // An error ends the body: the client sees it cut short.
            if failed { Err(Gone) } else { Ok(()) }
        };
        let _ = produce(&mut send);
    });
    Body::from_stream(tokio_stream(receiver))
}

/// A receiver as a stream of body chunks.
fn tokio_stream<T: Send + 'static>(mut receiver: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

// ---- WADO-RS: metadata --------------------------------------------------

/// The attributes of the instances a URL names as one DICOM JSON array,
/// read on the blocking pool a share of the instances per thread.
async fn metadata_of(State(state): State<AppState>, user: CurrentUser, Path(target): Path<Target>) -> Result<Response, ApiError> {
    let instances = find(&state, &user, &target).await?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let chunk = instances.len().div_ceil(threads).max(1);
    let mut tasks = Vec::new();
    for part in instances.chunks(chunk) {
        let (archive, part) = (state.archive.clone(), part.to_vec());
        tasks.push(tokio::task::spawn_blocking(move || {
            part.iter()
                .map(|i| {
                    let reader = archive.read_object(&i.object_key).map_err(unavailable)?;
                    let at = InstancePath { study: &i.series.study.study_uid, series: &i.series.series_uid, instance: &i.sop_instance_uid };
                    metadata::instance_metadata(reader, &at).map_err(|e| {
                        // The object, not the service: nested too deep, say.
                        tracing::warn!(sop_instance_uid = %i.sop_instance_uid, error = %e, "metadata of a stored object");
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("the attributes of {} cannot be read: {e}", i.sop_instance_uid),
                        )
                    })
                })
                .collect::<Result<Vec<Vec<u8>>, ApiError>>()
        }));
    }
    let base = base(&state);
    let mut body = Vec::with_capacity(instances.len() * 4096);
    body.push(b'[');
    let mut first = true;
    for task in tasks {
        for document in task.await.map_err(unavailable)?? {
            if !first {
                body.push(b',');
            }
            first = false;
            metadata::with_base(&document, &base, &mut body);
        }
    }
    body.push(b']');
    Ok(([(header::CONTENT_TYPE, "application/dicom+json")], body).into_response())
}

// ---- WADO-RS: frames and bulk data ---------------------------------------

/// `1,2,3` → 0-based frame indices; 400 for anything else.
fn frame_list(list: &str) -> Result<Vec<u32>, ApiError> {
    let frames: Result<Vec<u32>, _> = list.split(',').map(|f| f.trim().parse::<u32>()).collect();
    match frames {
        Ok(frames) if !frames.is_empty() && frames.len() <= 10_000 && frames.iter().all(|&f| f >= 1) => {
            Ok(frames.into_iter().map(|f| f - 1).collect())
        }
        _ => Err(ApiError::bad_request(format!("frames are numbers from 1, comma-separated; found {list:?}"))),
    }
}

fn render_error(e: RenderError) -> ApiError {
    match e {
        RenderError::NoSuchFrame { .. } => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        RenderError::NoPixelData => ApiError::new(StatusCode::NOT_FOUND, "the instance is not an image: it has no Pixel Data"),
        RenderError::Open { .. } => unavailable(e),
        e => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

async fn frames(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    frames_of(&state, &user, &target, &headers).await
}

/// One frame as the negotiated encoding sends it.
fn frame_part<R: std::io::Read + std::io::Seek>(
    object: &mut ObjectFrames<R>,
    frame: u32,
    encoding: &FrameEncoding,
) -> Result<Vec<u8>, RenderError> {
    match encoding {
        FrameEncoding::Decoded => {
            let bits_allocated = object.module().bits_allocated;
            object.decode(frame).map(|stored| telediag_imaging::source::little_endian(&stored, bits_allocated))
        }
        FrameEncoding::Stored { .. } => object.frame_bytes(frame).map(telediag_imaging::FrameBytes::into_bytes),
    }
}

/// The frames `target` names. The object is opened, every frame number
/// checked and the first frame made before answering, so a missing or
/// undecodable frame is a status rather than a body cut short; the rest
/// stream, one frame in memory at a time (a 1,000-frame cine loop is not
/// held whole).
async fn frames_of(state: &AppState, user: &CurrentUser, target: &Target, headers: &HeaderMap) -> Result<Response, ApiError> {
    let wanted = frame_list(target.frames.as_deref().unwrap_or_default())?;
    let i = find(state, user, target).await?.remove(0);
    let negotiated = media::negotiate_frames(accept(headers).as_deref(), &i.transfer_syntax_uid).map_err(not_acceptable)?;
    let part_type = format!("{}; transfer-syntax={}", negotiated.choice.media_type(), negotiated.choice.transfer_syntax());
    let (archive, encoding, checked) = (state.archive.clone(), negotiated.choice.clone(), wanted.clone());
    let (object, first) = tokio::task::spawn_blocking(move || {
        let reader = archive.read_object(&i.object_key).map_err(unavailable)?;
        let mut object = ObjectFrames::open(reader).map_err(render_error)?;
        let frames = object.module().frames;
        if let Some(&beyond) = checked.iter().find(|&&f| f >= frames) {
            return Err(render_error(RenderError::NoSuchFrame { frame: beyond, frames }));
        }
        let first = frame_part(&mut object, checked[0], &encoding).map_err(render_error)?;
        Ok((object, first))
    })
    .await
    .map_err(unavailable)??;
    if !negotiated.multipart && wanted.len() == 1 {
        return Ok(([(header::CONTENT_TYPE, part_type)], first).into_response());
    }
    let multipart = Multipart::new();
    let content_type = multipart.content_type(negotiated.choice.media_type());
    let (instance_url, encoding) = (target.instance_url(&base(state)), negotiated.choice);
    let body = stream_body(move |send| {
        let (mut object, mut first) = (object, Some(first));
        for &frame in &wanted {
            let bytes = match first.take() {
                Some(bytes) => bytes,
                None => match frame_part(&mut object, frame, &encoding) {
                    Ok(bytes) => bytes,
                    Err(e) => return send(Err(std::io::Error::other(e.to_string()))),
                },
            };
            let location = format!("{instance_url}/frames/{}", frame + 1);
            send(Ok(multipart.part_header(&part_type, Some(&location), Some(bytes.len() as u64))))?;
            send(Ok(bytes))?;
            send(Ok(multipart.part_end().to_vec()))?;
        }
        send(Ok(multipart.closing()))
    });
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// A bulk data URI's parts.
#[derive(Debug, serde::Deserialize)]
struct BulkTarget {
    study: String,
    series: String,
    instance: String,
    path: String,
}

async fn bulk_data(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(bulk): Path<BulkTarget>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut target = Target { study: bulk.study, series: Some(bulk.series), instance: Some(bulk.instance), frames: None };
    let i = find(&state, &user, &target).await?.remove(0);
    let steps = metadata::parse_bulk_path(&bulk.path).map_err(ApiError::bad_request)?;
    if steps == [metadata::BulkStep::Tag(0x7FE0_0010)] {
        // Pixel Data: its frames, as stored or decoded as the client asks.
        let frames_in = i.number_of_frames.unwrap_or(1).max(1);
        target.frames = Some((1..=frames_in).map(|n| n.to_string()).collect::<Vec<_>>().join(","));
        return frames_of(&state, &user, &target, &headers).await;
    }
    let archive = state.archive.clone();
    let value = tokio::task::spawn_blocking(move || {
        let reader = archive.read_object(&i.object_key).map_err(unavailable)?;
        metadata::bulk_value(reader, &steps).map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
    })
    .await
    .map_err(unavailable)??;
    let multipart = Multipart::new();
    let location = format!("{}/bulkdata/{}", target.instance_url(&base(&state)), bulk.path);
    let body = multipart.whole(&[(media::OCTET_STREAM.to_owned(), Some(location), value)]);
    Ok(([(header::CONTENT_TYPE, multipart.content_type(media::OCTET_STREAM))], body).into_response())
}

// ---- WADO-RS: rendered and thumbnails ------------------------------------

/// `window`, `viewport`, `quality` and `accept` of a rendered resource.
#[derive(Debug, Default, serde::Deserialize)]
struct RenderParams {
    window: Option<String>,
    viewport: Option<String>,
    quality: Option<String>,
    accept: Option<String>,
}

/// The largest rendered image a viewport may ask for.
const MAX_VIEWPORT: u32 = 4096;

struct RenderRequest {
    window: Option<telediag_imaging::Window>,
    viewport: Option<(u32, u32)>,
    quality: u8,
    format: media::Rendered,
}

fn render_request(params: &RenderParams, headers: &HeaderMap, thumbnail: bool) -> Result<RenderRequest, ApiError> {
    let format = media::negotiate_rendered(params.accept.as_deref(), accept(headers).as_deref()).map_err(not_acceptable)?;
    let window = match params.window.as_deref().filter(|_| !thumbnail) {
        None => None,
        Some(text) => {
            let bad =
                || ApiError::bad_request(format!("window is center,width,function (linear, linear-exact or sigmoid); found {text:?}"));
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            let [center, width, function] = fields.as_slice() else { return Err(bad()) };
            let function = match function.to_ascii_lowercase().as_str() {
                "linear" => telediag_imaging::display::VoiFunction::Linear,
                "linear-exact" => telediag_imaging::display::VoiFunction::LinearExact,
                "sigmoid" => telediag_imaging::display::VoiFunction::Sigmoid,
                _ => return Err(bad()),
            };
            let (center, width) = (center.parse::<f64>().map_err(|_| bad())?, width.parse::<f64>().map_err(|_| bad())?);
            if !center.is_finite() || !width.is_finite() || width <= 0.0 {
                return Err(bad());
            }
            Some(telediag_imaging::Window { center, width, function })
        }
    };
    let viewport = match params.viewport.as_deref() {
        None => None,
        Some(text) => {
            let bad = || ApiError::bad_request(format!("viewport is width,height (1 to {MAX_VIEWPORT} pixels each); found {text:?}"));
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            if fields.len() < 2 || fields[2..].iter().any(|f| !f.is_empty()) {
                return Err(bad());
            }
            let size = |f: &str| f.parse::<u32>().ok().filter(|&n| (1..=MAX_VIEWPORT).contains(&n));
            Some((size(fields[0]).ok_or_else(bad)?, size(fields[1]).ok_or_else(bad)?))
        }
    };
    let quality = match params.quality.as_deref() {
        None => 90,
        Some(q) => q
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| ApiError::bad_request(format!("quality is a number from 1 to 100; found {q:?}")))?,
    };
    let viewport = if thumbnail { Some(viewport.unwrap_or((THUMBNAIL_SIZE, THUMBNAIL_SIZE))) } else { viewport };
    Ok(RenderRequest { window, viewport, quality, format })
}

/// A thumbnail's size when the client names none.
const THUMBNAIL_SIZE: u32 = 256;

async fn render(state: &AppState, i: &InstanceMatch, frame: u32, request: RenderRequest) -> Result<Response, ApiError> {
    let archive = state.archive.clone();
    let key = i.object_key.clone();
    let image = tokio::task::spawn_blocking(move || {
        let reader = archive.read_object(&key).map_err(unavailable)?;
        let mut object = ObjectFrames::open(reader).map_err(render_error)?;
        let rendered = object.render(frame, request.window).map_err(render_error)?;
        let size = request.viewport.unwrap_or((rendered.image.width(), rendered.image.height()));
        let format = match request.format {
            media::Rendered::Jpeg => telediag_imaging::ThumbnailFormat::Jpeg,
            media::Rendered::Png => telediag_imaging::ThumbnailFormat::Png,
        };
        telediag_imaging::thumbnail::fit(&rendered.image, size, rendered.pixel_aspect, format, request.quality, request.viewport.is_some())
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))
    })
    .await
    .map_err(unavailable)??;
    Ok(([(header::CONTENT_TYPE, request.format.media_type())], image.bytes).into_response())
}

/// The instance a study or series is shown by: the middle image of its
/// first image series (as the worklist's thumbnails are chosen).
fn representative(instances: &[InstanceMatch]) -> Result<&InstanceMatch, ApiError> {
    let images: Vec<&InstanceMatch> = instances.iter().filter(|i| i.rows.is_some()).collect();
    let series = images.first().map(|i| i.series.series_uid.as_str());
    let in_series: Vec<&&InstanceMatch> = images.iter().filter(|i| Some(i.series.series_uid.as_str()) == series).collect();
    in_series.get(in_series.len() / 2).map(|i| **i).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "nothing here is an image"))
}

async fn rendered(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    image(&state, &user, &target, &params, &headers, false).await
}

async fn thumbnail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(target): Path<Target>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    image(&state, &user, &target, &params, &headers, true).await
}

/// A rendered image or thumbnail of what `target` names: the frame, the
/// instance's first frame, or a study's or series' representative image.
async fn image(
    state: &AppState,
    user: &CurrentUser,
    target: &Target,
    params: &RenderParams,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    let instances = find(state, user, target).await?;
    let frame = match target.frames.as_deref() {
        Some(list) => match frame_list(list)?.as_slice() {
            [frame] => *frame,
            _ => return Err(ApiError::bad_request("a rendered frame is one frame number")),
        },
        None => 0,
    };
    let shown = if target.instance.is_some() { &instances[0] } else { representative(&instances)? };
    render(state, shown, frame, render_request(params, headers, thumbnail)?).await
}

// ---- STOW-RS -----------------------------------------------------------

async fn store(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_parts(&state, &user, None, &headers, body).await
}

async fn store_into_study(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let study = StudyUid::parse(&study).map_err(|e| ApiError::bad_request(e.to_string()))?;
    store_parts(&state, &user, Some(&study), &headers, body).await
}

async fn store_parts(
    state: &AppState,
    user: &CurrentUser,
    study: Option<&StudyUid>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let site_id = user
        .site_id
        .ok_or_else(|| ApiError::forbidden("storing instances without a site: STOW-RS is for a site's users, into their site"))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = telediag_dicomweb::multipart::stow_boundary(content_type)
        .map_err(|reason| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason))?;
    let origin = Origin { site_id, calling_ae: None };
    let outcomes = stow::store_parts(&state.archive, &origin, study, &boundary, body.into_data_stream())
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(_) => tracing::info!(user = %user.username, sop_instance_uid = %outcome.sop_instance_uid, "STOW-RS stored"),
            Err(failure) => tracing::warn!(
                user = %user.username,
                sop_instance_uid = %outcome.sop_instance_uid,
                reason = format!("{:04X}", failure.reason),
                comment = %failure.comment,
                "STOW-RS instance refused"
            ),
        }
    }
    let status = StatusCode::from_u16(stow::http_status(&outcomes)).unwrap_or(StatusCode::OK);
    let base = base(state);
    let body = stow::response(&outcomes, &base, study.map(StudyUid::as_str));
    let mut response = ([(header::CONTENT_TYPE, "application/dicom+json")], body).into_response();
    *response.status_mut() = status;
    for failure in outcomes.iter().filter_map(|o| o.result.as_ref().err()) {
        let text = format!("{:04X} {base}: {}", failure.reason, failure.comment.replace(['\r', '\n'], " "));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}
