//! Selection annotations: parsing never panics, and whatever parses renders and parses back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::multus::selection::{parse_selections, render_annotation};

fuzz_target!(|data: &str| {
    if let Ok(parsed) = parse_selections(data, "fuzz") {
        let rendered = render_annotation(&parsed.selections);
        if !parsed.selections.is_empty() {
            let again = parse_selections(&rendered, "fuzz").expect("rendered annotation parses");
            assert_eq!(again.selections, parsed.selections);
        }
    }
});
