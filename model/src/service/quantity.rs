//! Kubernetes resource quantities (`0.5`, `500m`, `256Mi`, `1Gi`, `1e3`), checked the way the
//! API server checks them so a service that validates here also schedules there.

/// Binary and decimal suffixes Kubernetes accepts, with their multipliers.
const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1024.0 * 1024.0),
    ("Gi", 1024.0 * 1024.0 * 1024.0),
    ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// The value of a quantity in base units (cores or bytes), or why it is not one.
pub fn parse(text: &str) -> Result<f64, String> {
    let s = text.trim();
    let invalid = || format!("{text:?} is not a Kubernetes quantity (e.g. 0.5, 500m, 256Mi, 1Gi)");
    if s.is_empty() {
        return Err(invalid());
    }
    let (number, multiplier) = match SUFFIXES.iter().find(|(suffix, _)| s.ends_with(suffix)) {
        Some((suffix, multiplier)) => (&s[..s.len() - suffix.len()], *multiplier),
        None => match s.find(['e', 'E']) {
            // Decimal exponent form: 1e3, 2E-2.
            Some(at) => {
                let exponent: i32 = s[at + 1..].parse().map_err(|_| invalid())?;
                (&s[..at], 10f64.powi(exponent))
            }
            None => (s, 1.0),
        },
    };
    let digits_ok = {
        let unsigned = number.strip_prefix(['+', '-']).unwrap_or(number);
        let mut parts = unsigned.splitn(2, '.');
        let whole = parts.next().unwrap_or("");
        let fraction = parts.next();
        !unsigned.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()))
            && (!whole.is_empty() || fraction.is_some_and(|f| !f.is_empty()))
    };
    if !digits_ok {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    if value < 0.0 {
        return Err(format!("{text:?} is negative"));
    }
    Ok(value * multiplier)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_what_kubernetes_accepts() {
        assert_eq!(parse("0.5").unwrap(), 0.5);
        assert_eq!(parse("500m").unwrap(), 0.5);
        assert_eq!(parse("1").unwrap(), 1.0);
        assert_eq!(parse("256Mi").unwrap(), 256.0 * 1024.0 * 1024.0);
        assert_eq!(parse("1Gi").unwrap(), 1024.0 * 1024.0 * 1024.0);
        assert_eq!(parse("1G").unwrap(), 1e9);
        assert_eq!(parse("1e3").unwrap(), 1000.0);
        assert_eq!(parse(".5").unwrap(), 0.5);
        assert_eq!(parse(" 2 ").unwrap(), 2.0);
    }

    #[test]
    fn refuses_the_rest_with_a_message() {
        for bad in ["", "12X", "Mi", "1.2.3", "1 Gi", "one", "1gi", "--1", "."] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a Kubernetes quantity"), "{bad}: {err}");
        }
        assert!(parse("-1").unwrap_err().contains("negative"));
    }
}
