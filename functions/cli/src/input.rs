//! Gathering input bytes: files, directories, stdin; gzip recognised by its magic bytes,
//! and query-engine results (Athena, CloudTrail Lake) read as CloudTrail records
//! ([`crate::tabular`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use diagnosis::{read_input, InputError, InputItem};

use flate2::read::MultiGzDecoder;

/// Decompressed inputs larger than this are refused: a small gzip can expand enormously.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

const EVENT_EXTENSIONS: &[&str] = &[
    ".json",
    ".jsonl",
    ".ndjson",
    ".json.gz",
    ".jsonl.gz",
    ".gz",
    ".csv",
];

#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: larger than {MAX_INPUT_BYTES} bytes once decompressed")]
    TooLarge { path: String },
    /// An object store or API: where, and what it answered.
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
}

pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Rows of a query result that could not be read (the others are in `bytes`).
    pub unreadable: Vec<String>,
}

/// Expands `-`, files and directories (recursively, sorted) into named inputs.
pub fn expand(arguments: &[String]) -> Vec<Result<PathOrStdin, InputFileError>> {
    let mut out = Vec::new();
    for argument in arguments {
        if argument == "-" {
            out.push(Ok(PathOrStdin::Stdin));
            continue;
        }
        let path = PathBuf::from(argument);
        if path.is_dir() {
            out.extend(
                files_below(&path, EVENT_EXTENSIONS)
                    .into_iter()
                    .map(|p| Ok(PathOrStdin::Path(p))),
            );
        } else {
            out.push(Ok(PathOrStdin::Path(path)));
        }
    }
    out
}

pub enum PathOrStdin {
    Path(PathBuf),
    Stdin,
}

impl PathOrStdin {
    pub fn read(&self) -> Result<Input, InputFileError> {
        let (name, reader): (String, Box<dyn Read>) = match self {
            PathOrStdin::Stdin => ("<stdin>".to_owned(), Box::new(std::io::stdin().lock())),
            PathOrStdin::Path(path) => {
                let name = path.display().to_string();
                let file = std::fs::File::open(path).map_err(|source| InputFileError::Io {
                    path: name.clone(),
                    source,
                })?;
                (name, Box::new(file))
            }
        };
        read_all(name, reader)
    }
}

fn read_all(name: String, reader: Box<dyn Read>) -> Result<Input, InputFileError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InputFileError::Io {
            path: name.clone(),
            source,
        })?;
    from_bytes(name, bytes)
}

/// An input from its bytes as stored: inflated when gzip, converted when a query result.
pub fn from_bytes(name: String, mut bytes: Vec<u8>) -> Result<Input, InputFileError> {
    let io = |source| InputFileError::Io {
        path: name.clone(),
        source,
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // CloudTrail's JSON inflates about twentyfold; one allocation instead of a dozen.
        let guess = bytes.len().saturating_mul(24).min(MAX_INPUT_BYTES as usize);
        let mut plain = Vec::with_capacity(guess);
        MultiGzDecoder::new(bytes.as_slice())
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut plain)
            .map_err(io)?;
        bytes = plain;
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputFileError::TooLarge { path: name });
    }
    let mut unreadable = Vec::new();
    if let Some(converted) = crate::tabular::convert(&bytes) {
        bytes = converted.records;
        unreadable = converted.unreadable;
    }
    Ok(Input {
        name,
        bytes,
        unreadable,
    })
}

/// An input read: its records, and the rows of a query result that could not be read.
pub struct Parsed {
    pub name: String,
    pub unreadable: Vec<String>,
    pub items: Vec<Result<InputItem, InputError>>,
}

pub fn parse(input: Input) -> Parsed {
    Parsed {
        items: read_input(&input.bytes),
        name: input.name,
        unreadable: input.unreadable,
    }
}

/// Reads and parses `sources` on every core, handing them back in their order. At most
/// `2 × workers` inputs are held at once, whatever their number, so memory stays bounded
/// by a few files however large the archive.
pub fn read_in_parallel(
    sources: Vec<Result<PathOrStdin, InputFileError>>,
) -> impl Iterator<Item = Result<Parsed, InputFileError>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16);
    ordered_parallel(sources, workers, 2 * workers, |source| {
        source.and_then(|s| s.read()).map(parse)
    })
}

/// Window state: the next index a worker may take, and the next the consumer hands out.
struct Window {
    next_take: usize,
    next_emit: usize,
}

fn ordered_parallel<T, R>(
    items: Vec<T>,
    workers: usize,
    window: usize,
    work: impl Fn(T) -> R + Send + Sync + 'static,
) -> impl Iterator<Item = R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let total = items.len();
    let items: Arc<Mutex<Vec<Option<T>>>> = Arc::new(Mutex::new(items.into_iter().map(Some).collect()));
    let state = Arc::new((
        Mutex::new(Window {
            next_take: 0,
            next_emit: 0,
        }),
        Condvar::new(),
    ));
    let work = Arc::new(work);
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    for _ in 0..workers.min(total.max(1)) {
        let (items, state, work, sender) = (items.clone(), state.clone(), work.clone(), sender.clone());
        std::thread::spawn(move || loop {
            let index = {
                let (lock, turn) = &*state;
                let Ok(mut w) = lock.lock() else { return };
                while w.next_take < total && w.next_take >= w.next_emit + window {
                    w = match turn.wait(w) {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                }
                if w.next_take >= total {
                    return;
                }
                w.next_take += 1;
                w.next_take - 1
            };
            let item = match items.lock() {
                Ok(mut items) => items[index].take(),
                Err(_) => return,
            };
            let Some(item) = item else { return };
            if sender.send((index, work(item))).is_err() {
                return;
            }
        });
    }
    drop(sender);
    let mut waiting: BTreeMap<usize, R> = BTreeMap::new();
    let mut next = 0usize;
    std::iter::from_fn(move || {
        if next >= total {
            return None;
        }
        while !waiting.contains_key(&next) {
            let (index, result) = receiver.recv().ok()?;
            waiting.insert(index, result);
        }
        let result = waiting.remove(&next);
        next += 1;
        let (lock, turn) = &*state;
        if let Ok(mut w) = lock.lock() {
            w.next_emit = next;
        }
        turn.notify_all();
        result
    })
}

/// Files below `dir` ending with one of `extensions`, sorted; hidden entries are skipped.
pub fn files_below(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if extensions.iter().any(|e| name.ends_with(e)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_recognised_by_magic_bytes() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{\"Records\":[]}").unwrap();
        let compressed = encoder.finish().unwrap();
        let input = read_all("x".into(), Box::new(std::io::Cursor::new(compressed))).unwrap();
        assert_eq!(input.bytes, b"{\"Records\":[]}");
    }

    #[test]
    fn parallel_results_come_back_in_order_within_the_window() {
        let seen = Arc::new(Mutex::new(0usize));
        let counter = seen.clone();
        let out: Vec<usize> = ordered_parallel((0..200).collect(), 4, 3, move |n: usize| {
            // Later items finish first; the window still holds the order.
            std::thread::sleep(std::time::Duration::from_micros(((200 - n) % 7) as u64 * 50));
            *counter.lock().unwrap() += 1;
            n * 2
        })
        .collect();
        assert_eq!(out, (0..200).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(*seen.lock().unwrap(), 200);
        assert_eq!(ordered_parallel(Vec::<usize>::new(), 4, 3, |n| n).count(), 0);
    }

    #[test]
    fn truncated_gzip_is_an_error_not_a_panic() {
        let input = read_all("x".into(), Box::new(std::io::Cursor::new(vec![0x1f, 0x8b, 8, 0])));
        assert!(matches!(input, Err(InputFileError::Io { .. })));
    }
}
