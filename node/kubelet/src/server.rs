//! The kubelet's HTTP API, served over HTTPS by [`crate::run`] ([`serve_tls`], a
//! self-signed certificate from [`crate::tls`]) and over plain HTTP by [`serve`]: `/healthz`,
//! `/containerLogs/{namespace}/{pod}/{container}` (tailLines, previous, timestamps, limitBytes,
//! sinceSeconds/sinceTime, follow), which the apiserver proxies `pods/log` to, `/pods` (a
//! PodList of the pods this kubelet runs), `/stats/summary` (the Summary API, see
//! [`crate::stats`]) and the streaming endpoints (exec, attach, portForward: see
//! [`crate::streaming`]).
//!
//! Logs are read straight from the files containerd writes in the CRI format:
//! `<root>/<namespace>_<name>_<uid>/<container>/<attempt>.log`, one record per line,
//! `<RFC 3339 time> <stdout|stderr> <F|P> <content>` (`P`: a partial line, continued by the
//! next record).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::SinkExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How often a followed log file is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// What the API serves from.
#[derive(Clone)]
pub struct Sources {
    /// The pod logs (`/containerLogs`).
    pub pod_log_root: PathBuf,
    /// The pods this kubelet runs (`/pods`); 404 without.
    pub pods: Option<crate::pods::Known>,
    /// Resource usage (`/stats/summary`); 404 without.
    pub stats: Option<Arc<crate::stats::Collector>>,
    /// The runtime that serves exec, attach and port-forward sessions; 404 without.
    pub streaming: Option<skiff_cri::Cri>,
}

impl Sources {
    /// Only the logs under `pod_log_root`.
    pub fn logs(pod_log_root: PathBuf) -> Sources {
        Sources {
            pod_log_root,
            pods: None,
            stats: None,
            streaming: None,
        }
    }
}

/// The API's routes.
pub fn router(sources: Sources) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/pods", get(pods))
        .route("/stats/summary", get(summary));
    let streaming = sources.streaming.clone();
    let router = router.with_state(Arc::new(sources));
    match streaming {
        Some(cri) => router.merge(crate::streaming::router(cri)),
        None => router,
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sources: Sources,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sources))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the API over TLS with `tls` on `listener` until `shutdown` completes.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    sources: Sources,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::tls::TlsListener::new(listener, tls)?;
    axum::serve(listener, router(sources))
        .with_graceful_shutdown(shutdown)
        .await
}

fn json_response(value: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// `/pods`: a v1 PodList, as the kubelet serves it.
async fn pods(State(sources): State<Arc<Sources>>) -> Response {
    let Some(known) = &sources.pods else {
        return (StatusCode::NOT_FOUND, "no pod source").into_response();
    };
    let items: Vec<serde_json::Value> = known
        .list()
        .into_iter()
        .map(|pod| {
            let mut pod = serde_json::to_value(pod).unwrap_or_default();
            pod["apiVersion"] = "v1".into();
            pod["kind"] = "Pod".into();
            pod
        })
        .collect();
    json_response(&serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    }))
}

/// `/stats/summary`: node, pod and container usage.
async fn summary(State(sources): State<Arc<Sources>>) -> Response {
    let Some(stats) = &sources.stats else {
        return (StatusCode::NOT_FOUND, "no stats source").into_response();
    };
    match stats.summary().await {
        Ok(summary) => json_response(&summary),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// The `containerLogs` query (Kubernetes' PodLogOptions).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    /// Only the last this many lines.
    pub tail_lines: Option<usize>,
    /// The attempt before the newest one.
    pub previous: bool,
    /// Keep each line's CRI timestamp in front of it.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Keep streaming lines as they are written.
    pub follow: bool,
    /// Only records written at or after this time (`sinceTime`, or `sinceSeconds` ago).
    pub since: Option<jiff::Timestamp>,
}

impl LogOptions {
    /// Parses the query; a malformed value is an error naming it.
    pub fn from_query(query: &HashMap<String, String>) -> Result<LogOptions, String> {
        let flag = |name: &str| -> Result<bool, String> {
            match query.get(name).map(String::as_str) {
                None | Some("") | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(other) => Err(format!("invalid {name}: {other:?}")),
            }
        };
        let number = |name: &str| -> Result<Option<i64>, String> {
            match query.get(name).map(String::as_str) {
                None | Some("") => Ok(None),
                Some(text) => text
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("invalid {name}: {text:?}")),
            }
        };
        let limit_bytes = match number("limitBytes")? {
            Some(n) if n < 1 => return Err("limitBytes must be greater than zero".into()),
            n => n.map(|n| n as u64),
        };
        let since = match (query.get("sinceTime"), number("sinceSeconds")?) {
            (Some(time), _) if !time.is_empty() => Some(
                time.parse::<jiff::Timestamp>()
                    .map_err(|_| format!("invalid sinceTime: {time:?}"))?,
            ),
            (_, Some(seconds)) if seconds > 0 => {
                Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds))
            }
            (_, Some(_)) => return Err("sinceSeconds must be greater than zero".into()),
            _ => None,
        };
        Ok(LogOptions {
            since,
            // A negative tail means everything, as in Kubernetes.
            tail_lines: number("tailLines")?.and_then(|n| usize::try_from(n).ok()),
            previous: flag("previous")?,
            timestamps: flag("timestamps")?,
            limit_bytes,
            follow: flag("follow")?,
        })
    }
}

async fn container_logs(
    State(sources): State<Arc<Sources>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let options = match LogOptions::from_query(&query) {
        Ok(options) => options,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let file = match find_log(
        &sources.pod_log_root,
        &namespace,
        &pod,
        &container,
        options.previous,
    ) {
        Ok(file) => file,
        Err(message) => return (StatusCode::NOT_FOUND, message).into_response(),
    };
    let (tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let mut tx = tx;
        if let Err(err) = stream_log(&file, &options, &mut tx).await {
            let _ = tx.send(Err(err)).await;
        }
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(rx),
    )
        .into_response()
}

/// The log file of `container` of pod `namespace/pod`: the newest attempt, or with `previous`
/// the one before it. The pod's directory is found by its `<namespace>_<name>_` prefix (the
/// newest when the pod was recreated under the same name).
pub fn find_log(
    root: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<PathBuf, String> {
    let prefix = format!("{namespace}_{pod}_");
    let pod_dir = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| format!("pod {namespace}/{pod} has no logs on this node"))?;
    let container_dir = pod_dir.join(container);
    let mut attempts: Vec<(u64, PathBuf)> = std::fs::read_dir(&container_dir)
        .map_err(|_| format!("container {container:?} in pod {namespace}/{pod} has no logs"))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let attempt = name.strip_suffix(".log")?.parse().ok()?;
            Some((attempt, e.path()))
        })
        .collect();
    attempts.sort();
    let wanted = if previous {
        attempts.len().checked_sub(2)
    } else {
        attempts.len().checked_sub(1)
    };
    match wanted {
        Some(index) => Ok(attempts.swap_remove(index).1),
        None if previous => Err(format!(
            "previous terminated container {container:?} in pod {namespace}/{pod} not found"
        )),
        None => Err(format!(
            "container {container:?} in pod {namespace}/{pod} has no logs yet"
        )),
    }
}

/// One CRI log record.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    /// The RFC 3339 timestamp.
    pub time: &'a [u8],
    /// `P`: the line continues in the next record.
    pub partial: bool,
    /// The text, without the newline.
    pub content: &'a [u8],
}

/// Parses one CRI log line (without its newline); `None` for a malformed one.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = parts.next()?;
    let _stream = parts.next()?;
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record {
        time,
        partial,
        content: parts.next().unwrap_or_default(),
    })
}

/// Turns records into the text a client sees, across calls (a partial line's continuation
/// gets no second timestamp), within a byte limit.
struct Writer {
    timestamps: bool,
    at_line_start: bool,
    remaining: Option<u64>,
}

impl Writer {
    /// Appends `record` to `out`; false once the byte limit is reached.
    fn write(&mut self, record: &Record<'_>, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if self.timestamps && self.at_line_start {
            out.extend_from_slice(record.time);
            out.push(b' ');
        }
        out.extend_from_slice(record.content);
        if !record.partial {
            out.push(b'\n');
        }
        self.at_line_start = !record.partial;
        if let Some(remaining) = &mut self.remaining {
            let written = (out.len() - start) as u64;
            if written >= *remaining {
                out.truncate(start + *remaining as usize);
                *remaining = 0;
                return false;
            }
            *remaining -= written;
        }
        true
    }
}

/// The complete lines of `data` (each without its newline) and how many bytes they span.
fn complete_lines(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = data[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    (lines, end)
}

/// Renders `file` per `options` into `tx` (which ends when the client goes away).
async fn stream_log(
    file: &Path,
    options: &LogOptions,
    tx: &mut futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let mut writer = Writer {
        timestamps: options.timestamps,
        at_line_start: true,
        remaining: options.limit_bytes,
    };
    let data = tokio::fs::read(file).await?;
    let (lines, mut offset) = complete_lines(&data);
    let records: Vec<Record<'_>> = lines
        .iter()
        .filter_map(|l| parse_record(l))
        .filter(|r| is_since(r, options.since))
        .collect();
    let first = match options.tail_lines {
        Some(n) => tail_start(&records, n),
        None => 0,
    };
    let mut out = Vec::new();
    let mut open = true;
    for record in &records[first..] {
        if !writer.write(record, &mut out) {
            open = false;
            break;
        }
    }
    if !out.is_empty() && tx.send(Ok(out.into())).await.is_err() {
        return Ok(());
    }
    if !options.follow || !open {
        return Ok(());
    }
    let mut handle = tokio::fs::File::open(file).await?;
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        if tx.is_closed() {
            return Ok(());
        }
        // A removed file (the pod is gone) ends the stream.
        if tokio::fs::metadata(file).await.is_err() {
            return Ok(());
        }
        handle.seek(std::io::SeekFrom::Start(offset as u64)).await?;
        let mut data = Vec::new();
        handle.read_to_end(&mut data).await?;
        let (lines, end) = complete_lines(&data);
        if end == 0 {
            // The container restarted (its next attempt logs elsewhere): this log is done.
            if newer_attempt(file) {
                return Ok(());
            }
            continue;
        }
        offset += end;
        let mut out = Vec::new();
        let mut open = true;
        for record in lines
            .iter()
            .filter_map(|l| parse_record(l))
            .filter(|r| is_since(r, options.since))
        {
            if !writer.write(&record, &mut out) {
                open = false;
                break;
            }
        }
        if !out.is_empty() && tx.send(Ok(out.into())).await.is_err() {
            return Ok(());
        }
        if !open {
            return Ok(());
        }
    }
}

/// Whether the container directory holding `file` (`<attempt>.log`) has a later attempt.
fn newer_attempt(file: &Path) -> bool {
    let attempt_of = |path: &Path| -> Option<u64> {
        path.file_name()?
            .to_str()?
            .strip_suffix(".log")?
            .parse()
            .ok()
    };
    let (Some(this), Some(dir)) = (attempt_of(file), file.parent()) else {
        return false;
    };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| attempt_of(&e.path()).is_some_and(|a| a > this))
}

/// Whether `record` was written at or after `since` (a record whose time does not parse is
/// kept).
fn is_since(record: &Record<'_>, since: Option<jiff::Timestamp>) -> bool {
    let Some(since) = since else { return true };
    std::str::from_utf8(record.time)
        .ok()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_none_or(|t| t >= since)
}

/// The index of the first record of the last `lines` lines (a partial record belongs to the
/// line its next full record ends).
fn tail_start(records: &[Record<'_>], lines: usize) -> usize {
    if lines == 0 {
        return records.len();
    }
    let mut seen = 0;
    // Walk back over line ends: a line starts right after the previous line's full record.
    for (index, record) in records.iter().enumerate().rev() {
        let ends_line = !record.partial || index == records.len() - 1;
        if ends_line {
            if seen == lines {
                return index + 1;
            }
            seen += 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let record = parse_record(b"2026-11-25T21:00:00.1Z stdout F hello world").unwrap();
        assert_eq!(record.time, b"2026-11-25T21:00:00.1Z");
        assert!(!record.partial);
        assert_eq!(record.content, b"hello world");
        let partial = parse_record(b"2026-11-25T21:00:00.1Z stderr P ").unwrap();
        assert!(partial.partial);
        assert_eq!(partial.content, b"");
        assert!(parse_record(b"garbage").is_none());
    }

    #[test]
    fn tails_by_lines() {
        let lines: Vec<&[u8]> = vec![
            b"t1 stdout F a",
            b"t2 stdout P b",
            b"t3 stdout F c",
            b"t4 stdout F d",
        ];
        let records: Vec<Record<'_>> = lines.iter().map(|l| parse_record(l).unwrap()).collect();
        assert_eq!(tail_start(&records, 1), 3);
        assert_eq!(tail_start(&records, 2), 1);
        assert_eq!(tail_start(&records, 3), 0);
        assert_eq!(tail_start(&records, 10), 0);
        assert_eq!(tail_start(&records, 0), 4);
    }

    #[test]
    fn filters_by_time() {
        let query = |pairs: &[(&str, &str)]| {
            LogOptions::from_query(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let options = query(&[("sinceTime", "2026-11-25T21:00:01Z")]).unwrap();
        let early = parse_record(b"2026-11-25T21:00:00.5Z stdout F a").unwrap();
        let late = parse_record(b"2026-11-25T21:00:01.000000001Z stdout F b").unwrap();
        assert!(!is_since(&early, options.since));
        assert!(is_since(&late, options.since));
        assert!(is_since(&early, None));
        let recent = query(&[("sinceSeconds", "60")]).unwrap();
        assert!(!is_since(&early, recent.since));
        assert!(query(&[("sinceTime", "yesterday")]).is_err());
        assert!(query(&[("sinceSeconds", "0")]).is_err());
    }

    #[test]
    fn limits_bytes() {
        let mut writer = Writer {
            timestamps: false,
            at_line_start: true,
            remaining: Some(3),
        };
        let mut out = Vec::new();
        assert!(writer.write(&parse_record(b"t stdout F a").unwrap(), &mut out));
        assert!(!writer.write(&parse_record(b"t stdout F bcd").unwrap(), &mut out));
        assert_eq!(out, b"a\nb");
    }
}
