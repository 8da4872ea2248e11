//! What every plugin's reader shares: an address field read as a number, a range's report
//! (first and last address, usable count) and counts saturated into a `u64`.

use serde_json::Value;

use crate::cidr::{AddrRange, Cidr, parse_ip, to_u128};
use crate::field::{OwnedPath, Problems};

use super::RangeReport;

pub(super) fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An address field: a string holding an IP.
pub(super) fn ip_field(
    path: &OwnedPath,
    value: Option<&Value>,
    problems: &mut Problems,
) -> Option<u128> {
    let text = path.at(value?).string(problems)?;
    match parse_ip(text) {
        Some(ip) => Some(to_u128(ip)),
        None => {
            problems.error(path.as_str(), format!("{text:?} is not an IP address"));
            None
        }
    }
}

pub(super) fn range_report(cidr: Cidr, range: AddrRange, usable: u128) -> RangeReport {
    let empty = usable == 0 || range.is_empty();
    RangeReport {
        cidr: cidr.network().to_string(),
        family: cidr.family(),
        first: (!empty).then(|| range.start_addr().to_string()),
        last: (!empty).then(|| range.end_addr().to_string()),
        usable: saturate(usable),
    }
}
