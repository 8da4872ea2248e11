//! Kubernetes and Linux naming rules, with messages that say what was expected.

/// Checks a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters): namespace
/// names, NAD names in the short selection form, node type keys' parts.
///
/// # Errors
///
/// What is wrong, naming `text` (quoted) unless it is empty: callers add where it was found,
/// not the text again.
pub fn dns1123_label(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > 63 {
        return Err(format!(
            "{text:?} is {} characters long; at most 63 are allowed",
            text.len()
        ));
    }
    let ok_inner = text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    if !ok_inner || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "{text:?} is not a DNS-1123 label: use lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (dot-separated labels, at most 253 characters): object names
/// such as a NetworkAttachmentDefinition's, node type names.
///
/// # Errors
///
/// As [`dns1123_label`]'s: naming `text` unless it is empty.
pub fn dns1123_subdomain(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > 253 {
        return Err(format!(
            "{:?}… is {} characters long; at most 253 are allowed",
            &text[..text.char_indices().nth(20).map_or(text.len(), |(i, _)| i)],
            text.len()
        ));
    }
    let valid = text.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a DNS-1123 (RFC 1123) subdomain: use lowercase letters, digits, '-' and '.', \
             each dot-separated part starting and ending with a letter or digit"
        ))
    }
}

/// `text` as a DNS-1123 label of at most `max` characters (`max` ≤ 63), for names derived
/// from user input (a pod named after a 253-character node name): characters other than
/// lowercase letters, digits and '-' become '-', and a longer text keeps its first characters
/// followed by `-` and 16 hex digits of its FNV-1a hash, so distinct texts stay distinct
/// (with the odds of a 64-bit hash) and a text short enough comes back as it is.
pub fn bounded_label(text: &str, max: usize) -> String {
    let max = max.clamp(18, 63);
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    if text.len() <= max && dns1123_label(text).is_ok() {
        return cleaned;
    }
    // FNV-1a, 64 bits: stable across builds and processes (a name must be the same when the
    // command outside the cluster and its Job compute it).
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let keep = max - 17;
    let head = cleaned[..cleaned.len().min(keep)].trim_matches('-');
    let head = if head.is_empty() { "x" } else { head };
    format!("{head}-{hash:016x}")
}

/// Checks a Linux network interface name: 1–15 bytes, no '/', no whitespace, no ':' (alias
/// syntax), not "." or "..".
pub fn interface_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("an interface name must not be empty".into());
    }
    if text.len() > 15 {
        return Err(format!(
            "interface name {text:?} is {} bytes long; Linux allows at most 15",
            text.len()
        ));
    }
    if text == "." || text == ".." {
        return Err(format!("{text:?} is not a valid interface name"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name {text:?} contains {c:?}; Linux interface names may not contain \
             '/', ':' or whitespace"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_labels_are_labels_and_keep_short_names() {
        assert_eq!(bounded_label("client-n1-osd-0", 63), "client-n1-osd-0");
        let long = format!("host-{}.example.com", "storage-a".repeat(26));
        let a = bounded_label(&long, 63);
        assert!(a.len() <= 63 && dns1123_label(&a).is_ok(), "{a}");
        assert!(a.starts_with("host-storage-a"), "{a}");
        // Distinct texts, distinct labels; the same text, the same label.
        let b = bounded_label(&long.replace("example", "exemple"), 63);
        assert_ne!(a, b);
        assert_eq!(a, bounded_label(&long, 63));
        // Dots and capitals are not label characters: the text is hashed, not merely cleaned,
        // so "a.b" and "a-b" stay apart.
        assert_ne!(bounded_label("a.b", 63), bounded_label("a-b", 63));
        assert!(dns1123_label(&bounded_label("worker-2.example.com", 63)).is_ok());
        assert!(dns1123_label(&bounded_label("...", 20)).is_ok());
    }

    #[test]
    fn labels() {
        for ok in ["a", "public-net", "0abc", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "multus%net",
            &"a".repeat(64),
        ] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        assert!(dns1123_subdomain("storage-nodes").is_ok());
        assert!(dns1123_subdomain("a.b-c.d").is_ok());
        for bad in ["", "a..b", ".a", "a.", "Upper", "a_b", "-a.b"] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces() {
        for ok in ["eth0", "public", "enp0s31f6", "net_1", "a.b"] {
            assert!(interface_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "eth 0", "a/b", "abcdefghijklmnop", "eth0:1"] {
            assert!(interface_name(bad).is_err(), "{bad}");
        }
    }
}
