//! Gathering input bytes: files, directories, stdin; gzip recognised by its magic bytes,
//! and query-engine results (Athena, CloudTrail Lake) read as CloudTrail records
//! ([`crate::tabular`]).

use std::io::Read;
use std::path::{Path, PathBuf};

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
        let mut plain = Vec::new();
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
    fn truncated_gzip_is_an_error_not_a_panic() {
        let input = read_all("x".into(), Box::new(std::io::Cursor::new(vec![0x1f, 0x8b, 8, 0])));
        assert!(matches!(input, Err(InputFileError::Io { .. })));
    }
}
