//! Times on the command line: offsets into a trace (`90`, `90s`, `5m`, `1h30m`, `1.5h`, `500ms`) and
//! speeds (`max`, `10`, `0.5`).

use crate::replay::Speed;

/// Seconds from a duration: a number (seconds) or number-unit pairs with `h`, `m`, `s`, `ms`.
pub fn parse_offset(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty time".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 { Ok(secs) } else { Err(format!("`{t}` is not a time")) };
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(format!("`{t}`: `{c}` is not a unit; use h, m, s or ms, as in `1h30m`")),
        };
        let n: f64 = number.parse().map_err(|_| format!("`{t}`: a number must come before `{c}`"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("`{t}`: `{number}` has no unit; write `{number}s`"));
    }
    Ok(total)
}

/// `max` (no waits) or a positive factor.
pub fn parse_speed(text: &str) -> Result<Speed, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    match t.trim_end_matches(['x', 'X']).parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Times(x)),
        _ => Err(format!("`{t}` is not a speed; write a positive number such as `10`, or `max`")),
    }
}

/// `+1h02m03s`-style clock for a number of seconds.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("+{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("90"), Ok(90.0));
        assert_eq!(parse_offset("90s"), Ok(90.0));
        assert_eq!(parse_offset("5m"), Ok(300.0));
        assert_eq!(parse_offset("1h30m"), Ok(5400.0));
        assert_eq!(parse_offset("1.5h"), Ok(5400.0));
        assert_eq!(parse_offset("500ms"), Ok(0.5));
        assert_eq!(parse_offset("1m30s"), Ok(90.0));
        assert!(parse_offset("5d").unwrap_err().contains("not a unit"));
        assert!(parse_offset("1h30").unwrap_err().contains("no unit"));
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("").is_err());
    }

    #[test]
    fn speeds_and_clock() {
        assert_eq!(parse_speed("max"), Ok(Speed::Max));
        assert_eq!(parse_speed("10"), Ok(Speed::Times(10.0)));
        assert_eq!(parse_speed("2x"), Ok(Speed::Times(2.0)));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
        assert_eq!(clock(3723.0), "+01:02:03");
    }
}
