//! A soak's checkpoint (`run --resume`): reading it never panics; a matrix it holds is either
//! refused or read into a matrix that writes back to what it reads (read → write → read is a
//! fixed point), and its PKI part is decoded or refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_coordinator::checkpoint::Checkpoint;
use multinet_coordinator::matrix::PathMatrix;
use multinet_coordinator::pki::RunPki;

fuzz_target!(|data: &[u8]| {
    let Ok(checkpoint) = Checkpoint::parse(data, std::path::Path::new("checkpoint.json")) else {
        return;
    };
    let _ = RunPki::restore(&checkpoint.pki);
    if let Ok(matrix) = PathMatrix::from_state(checkpoint.matrix) {
        let written = matrix.to_state();
        let again = PathMatrix::from_state(written.clone()).expect("a matrix it wrote reads back");
        assert_eq!(again.to_state(), written, "read → write → read is a fixed point");
    }
});
