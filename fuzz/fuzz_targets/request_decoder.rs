//! Fuzzes request decoding: any bytes after the length prefix must decode or be refused with
//! an error — no panic, and no allocation beyond what the bytes can justify (libFuzzer's
//! `-malloc_limit_mb` turns an oversized reservation into a failure).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strata_api::request::decode(bytes::Bytes::copy_from_slice(data));
});
