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
