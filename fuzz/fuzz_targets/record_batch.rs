//! Fuzzes record batch parsing as produce validation and crash recovery run it: validation of
//! one batch, and a CRC-checking scan over the same bytes as a segment file.
#![no_main]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use strata::log::{batch, scanner::BatchScanner};

/// One scratch file, rewritten for every input (creating files per input would dominate).
fn scratch() -> &'static Mutex<File> {
    static FILE: OnceLock<Mutex<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("strata-fuzz-{}.log", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        Mutex::new(file)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = batch::validate_single_batch(data);
    let file = scratch().lock().unwrap();
    file.set_len(0).unwrap();
    file.write_all_at(data, 0).unwrap();
    let mut scan = BatchScanner::new(&file, Path::new("fuzz"), 0, data.len() as u64, true);
    let mut end = 0;
    while let Ok(Some(found)) = scan.next_batch() {
        assert!(found.position >= end, "batches go forward");
        end = found.position + found.header.size();
        assert!(end <= data.len() as u64, "a batch never runs past the file");
    }
});
