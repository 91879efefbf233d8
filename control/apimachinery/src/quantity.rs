//! Resource quantities (`500m`, `1.5Gi`, `1e3`) exactly as `k8s.io/apimachinery/pkg/api/resource`
//! reads, compares and prints them: fixed point, never a float.
//!
//! A [`Quantity`] is an integer count of nano-units (10^-9 of a core, a byte, ...) in an `i128`,
//! plus the [`Format`] (suffix family) it was written in. Kubernetes rounds every parsed value up to
//! a whole nano-unit, so nano precision loses nothing. The supported magnitude is below 10^29 base
//! units (10^38 nano-units), ten billion times what an int64 holds; Kubernetes itself caps binary
//! quantities at 2^63-1, which is kept, and a decimal number beyond the range is refused with
//! [`QuantityError::Numeric`] rather than wrapped.
//!
//! What Kubernetes does and this module follows:
//!
//! * Parsing ([`Quantity::parse`], `ParseQuantity`): `<sign><digits>.<digits><suffix>`, the suffix
//!   one of `Ki Mi Gi Ti Pi Ei` (BinarySI), `n u m "" k M G T P E` (DecimalSI) or `e`/`E` with a
//!   signed exponent (DecimalExponent). The scanner is Kubernetes' and as lenient: `1.`, `.5`, `+`,
//!   `-.` and a bare suffix (`m`) are zero or valid numbers. Values are rounded away from zero to a
//!   whole nano-unit (`0.1n` is `1n`), binary ones capped at 2^63-1, and a binary value below 1
//!   switches to DecimalSI.
//! * Reading: [`Quantity::value`], [`Quantity::milli_value`], [`Quantity::scaled_value`] round up,
//!   away from zero (`ScaledValue`'s int64 path), and saturate at the int64 limits.
//! * Ordering and equality compare values, not spellings (`1` == `1000m`).
//! * Printing ([`Display`](fmt::Display), `CanonicalizeBytes`): the largest suffix of the
//!   quantity's family that keeps the number whole, so `1000m` is `1`, `0.5` is `500m`, `1.5Gi` is
//!   `1536Mi` and `1e3` stays `1e3`; a binary value that is fractional or below 1024 in magnitude
//!   is printed decimally, and one beyond `Ei` or a decimal one beyond `E` in exponent notation.
//!
//! Where Kubernetes differs: its `String()` hands back the parsed text itself when the text was
//! already canonical save for a `+` sign, leading zeros or an upper-case `E` (`+1`, `01`, `1E3`);
//! this module always prints the computed form (`1`, `1`, `1e3`). And its `Value()` rounds a
//! negative fraction toward +infinity on its big-number path; here it is always away from zero.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

/// The regular expression Kubernetes names when a quantity does not scan.
pub const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Nano-units per base unit.
const NANO: i128 = 1_000_000_000;
/// The largest magnitude held, in nano-units: below 10^29 base units.
const MAX_NANOS: i128 = 10i128.pow(38) - 1;
/// Kubernetes' cap on binary quantities (`maxAllowed`, 2^63-1), in nano-units.
const BINARY_CAP_NANOS: i128 = i64::MAX as i128 * NANO;

/// Why a quantity does not parse; `Display` is Kubernetes' message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Empty, or not of the shape `<number><suffix>` (`abc`, `1.1.M`, `1 `): `ErrFormatWrong`.
    #[error("quantities must match the regular expression '{QUANTITY_REGEX}'")]
    Format,
    /// A suffix of the right characters that is none of the known ones (`1i`, `5mi`, `3e-`):
    /// `ErrSuffix`.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// A decimal number too large for the supported range (magnitude 10^29 and above):
    /// `ErrNumeric`, which Kubernetes also returns for some numbers beyond an int64.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
}

/// The suffix family a quantity is written (and printed) in: Kubernetes' `Format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi` (powers of 1024).
    BinarySI,
    /// `12M` (powers of 1000).
    DecimalSI,
}

/// A power of ten, as Kubernetes' `resource.Scale`: `1e3` has scale 3, `1m` scale -3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scale(pub i32);

impl Scale {
    /// 10^-9.
    pub const NANO: Scale = Scale(-9);
    /// 10^-6.
    pub const MICRO: Scale = Scale(-6);
    /// 10^-3.
    pub const MILLI: Scale = Scale(-3);
    /// 10^0.
    pub const UNIT: Scale = Scale(0);
    /// 10^3.
    pub const KILO: Scale = Scale(3);
    /// 10^6.
    pub const MEGA: Scale = Scale(6);
    /// 10^9.
    pub const GIGA: Scale = Scale(9);
    /// 10^12.
    pub const TERA: Scale = Scale(12);
    /// 10^15.
    pub const PETA: Scale = Scale(15);
    /// 10^18.
    pub const EXA: Scale = Scale(18);
}

/// An exact resource quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// The DecimalSI suffixes by exponent, from `n` (10^-9) to `E` (10^18).
const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// The BinarySI suffixes by power of 1024 (index 1 is `Ki`).
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// What a suffix means: a power of ten, a power of two, and the family (`interpret`).
fn interpret(suffix: &str) -> Result<(i64, u32, Format), QuantityError> {
    if let Some((_, exp)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Ok((i64::from(*exp), 0, Format::DecimalSI));
    }
    if let Some(power) = BINARY_SUFFIXES[1..].iter().position(|s| *s == suffix) {
        return Ok((0, 10 * (power as u32 + 1), Format::BinarySI));
    }
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .filter(|rest| !rest.is_empty())
        .ok_or(QuantityError::Suffix)?;
    // Go's ParseInt: an optional sign, then digits only.
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Suffix);
    }
    let exponent: i64 = exponent.parse().map_err(|_| QuantityError::Suffix)?;
    // Kubernetes keeps the exponent in an int32 it negates, so it refuses what does not fit.
    if exponent.unsigned_abs() > i32::MAX as u64 {
        return Err(QuantityError::Suffix);
    }
    Ok((exponent, 0, Format::DecimalExponent))
}

/// `ceil(a / b)` for `b > 0`, rounding away from zero: Kubernetes' "round up".
fn div_away_from_zero(a: i128, b: i128) -> i128 {
    let quotient = a / b;
    if a % b == 0 {
        quotient
    } else {
        quotient + a.signum()
    }
}

impl Quantity {
    /// Parses `text` as Kubernetes' `ParseQuantity` does (no surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Format);
        }
        let bytes = text.as_bytes();
        let digits_while = |mut pos: usize| {
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            pos
        };
        let negative = bytes[0] == b'-';
        let mut pos = usize::from(matches!(bytes[0], b'-' | b'+'));
        let int_start = pos;
        pos = digits_while(pos);
        let int_digits = &bytes[int_start..pos];
        let mut frac_digits: &[u8] = &[];
        if bytes.get(pos) == Some(&b'.') {
            let start = pos + 1;
            pos = digits_while(start);
            frac_digits = &bytes[start..pos];
        }
        // The suffix: letters from the set, an optional sign, digits; nothing may follow.
        let suffix_start = pos;
        while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
            pos += 1;
        }
        if matches!(bytes.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        if digits_while(pos) != bytes.len() {
            return Err(QuantityError::Format);
        }
        // Kubernetes reads a string of only zeros (after the sign) as 0 before looking at a
        // suffix; without that shortcut "0" and "00" behave the same anyway.
        let (exp10, exp2, mut format) = interpret(&text[suffix_start..])?;

        let digits: Vec<u8> = int_digits
            .iter()
            .chain(frac_digits)
            .map(|d| d - b'0')
            .skip_while(|&d| d == 0)
            .collect();
        if digits.is_empty() {
            return Ok(Quantity { nanos: 0, format });
        }
        // value = digits * 10^(exp10 - fraction digits) * 2^exp2; in nano-units, 9 more places.
        let shift = exp10 - frac_digits.len() as i64 + 9;
        let factor = 1i128 << exp2;
        let magnitude = scale_digits(&digits, shift, factor);
        let magnitude = match (magnitude, format) {
            // Kubernetes caps binary quantities rather than refusing them.
            (Some(m), Format::BinarySI) => Some(m.min(BINARY_CAP_NANOS)),
            (None, Format::BinarySI) => Some(BINARY_CAP_NANOS),
            (m, _) => m.filter(|&m| m <= MAX_NANOS),
        };
        let magnitude = magnitude.ok_or(QuantityError::Numeric)?;
        if format == Format::BinarySI && magnitude < NANO {
            format = Format::DecimalSI;
        }
        Ok(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// Reads a quantity as the apiserver decodes it from JSON: surrounding whitespace is trimmed
    /// first (`UnmarshalJSON`), then [`parse`](Quantity::parse).
    pub fn from_api(quantity: &ApiQuantity) -> Result<Quantity, QuantityError> {
        Quantity::parse(quantity.0.trim())
    }

    /// The canonical form as a k8s-openapi quantity.
    pub fn to_api(&self) -> ApiQuantity {
        ApiQuantity(self.to_string())
    }

    /// `value` base units (`NewQuantity`).
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(value) * NANO,
            format,
        }
    }

    /// `value` thousandths (`NewMilliQuantity`).
    pub fn new_milli(value: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(value) * 1_000_000,
            format,
        }
    }

    /// `value * 10^scale`, DecimalSI (`NewScaledQuantity`); `None` for a scale below nano-units
    /// or a value beyond the supported range.
    pub fn new_scaled(value: i64, scale: Scale) -> Option<Quantity> {
        let places = u32::try_from(i64::from(scale.0) + 9).ok()?;
        let nanos = 10i128
            .checked_pow(places)
            .and_then(|unit| unit.checked_mul(i128::from(value)))
            .filter(|n| n.abs() <= MAX_NANOS)?;
        Some(Quantity {
            nanos,
            format: Format::DecimalSI,
        })
    }

    /// The same value in another format.
    pub fn with_format(self, format: Format) -> Quantity {
        Quantity { format, ..self }
    }

    /// The suffix family the quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.nanos.signum() as i32
    }

    /// The value in base units, rounded up away from zero (`Value`): `1.5` is 2, `100m` is 1.
    pub fn value(&self) -> i64 {
        self.scaled_value(Scale::UNIT)
    }

    /// The value in thousandths, rounded up away from zero (`MilliValue`): `0.1m` is 1.
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(Scale::MILLI)
    }

    /// The value in units of 10^scale, rounded up away from zero (`ScaledValue`), saturating
    /// at the int64 limits.
    pub fn scaled_value(&self, scale: Scale) -> i64 {
        let places = i64::from(scale.0) + 9;
        let scaled = if places >= 0 {
            // 10^39 already exceeds every value, leaving only the rounding unit.
            match 10i128.checked_pow(places as u32) {
                Some(unit) => div_away_from_zero(self.nanos, unit),
                None => self.nanos.signum(),
            }
        } else {
            let up = 10i128.checked_pow(places.unsigned_abs() as u32);
            up.and_then(|unit| self.nanos.checked_mul(unit))
                .unwrap_or(self.nanos.signum() * i128::MAX)
        };
        scaled.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The value in nano-units, exactly.
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }

    /// The sum, in `self`'s format (`other`'s if `self` is zero, as `Add` does); `None` beyond
    /// the supported range.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        (nanos.abs() <= MAX_NANOS).then_some(Quantity { nanos, format })
    }

    /// The difference, formatted as [`checked_add`](Quantity::checked_add) does (`Sub`).
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        self.checked_add(&Quantity {
            nanos: -other.nanos,
            format: other.format,
        })
    }

    /// The canonical number and suffix (`CanonicalizeBytes`).
    pub fn canonicalize(&self) -> (String, String) {
        if self.nanos == 0 {
            return ("0".into(), String::new());
        }
        if self.format == Format::BinarySI
            && self.nanos.abs() >= 1024 * NANO
            && self.nanos % NANO == 0
        {
            let mut mantissa = self.nanos / NANO;
            let mut power = 0;
            while mantissa % 1024 == 0 {
                mantissa /= 1024;
                power += 1;
            }
            // Past `Ei` there is no binary suffix: print decimally instead.
            if let Some(suffix) = BINARY_SUFFIXES.get(power) {
                return (mantissa.to_string(), (*suffix).to_owned());
            }
        }
        // Move every factor of ten into the exponent, then back out until it is a multiple of 3.
        let mut mantissa = self.nanos;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent.rem_euclid(3) != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        let decimal_suffix = DECIMAL_SUFFIXES.iter().find(|(_, e)| *e == exponent);
        let suffix = match (self.format, decimal_suffix) {
            (Format::DecimalExponent, _) if exponent == 0 => String::new(),
            (Format::DecimalSI | Format::BinarySI, Some((suffix, _))) => (*suffix).to_owned(),
            // DecimalExponent, or DecimalSI beyond `E`.
            _ => format!("e{exponent}"),
        };
        (mantissa.to_string(), suffix)
    }
}

/// `digits * 10^shift * factor` in nano-units, rounded away from zero; `None` if it does not fit
/// an i128. `digits` has no leading zeros and is not empty.
fn scale_digits(digits: &[u8], shift: i64, factor: i128) -> Option<i128> {
    // Digits left of the point once it has moved by `shift`.
    let whole_len = (digits.len() as i64 + shift).clamp(0, digits.len() as i64) as usize;
    let (whole_digits, fraction) = digits.split_at(whole_len);
    let mut whole: i128 = 0;
    for &d in whole_digits {
        whole = whole.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    // Zeros appended on the right when the point moves past the last digit.
    let trailing_zeros = (shift - (digits.len() - whole_len) as i64).max(0);
    for _ in 0..trailing_zeros.min(40) {
        whole = whole.checked_mul(10)?;
    }
    let whole = whole.checked_mul(factor)?;
    // The fraction times `factor`, by Horner's rule from the last digit: `carry` stays the floor
    // of the exact partial value, `inexact` records whether anything was dropped.
    let mut carry: i128 = 0;
    let mut inexact = false;
    for &d in fraction.iter().rev() {
        let t = i128::from(d) * factor + carry;
        inexact |= t % 10 != 0;
        carry = t / 10;
    }
    // Zeros between the point and the first digit when the point moved left of them all.
    let leading_zeros = (-(digits.len() as i64) - shift).max(0);
    for _ in 0..leading_zeros {
        if carry == 0 {
            break;
        }
        inexact |= carry % 10 != 0;
        carry /= 10;
    }
    whole.checked_add(carry + i128::from(inexact))
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(text)
    }
}

impl TryFrom<&ApiQuantity> for Quantity {
    type Error = QuantityError;

    fn try_from(quantity: &ApiQuantity) -> Result<Quantity, QuantityError> {
        Quantity::from_api(quantity)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (number, suffix) = self.canonicalize();
        write!(f, "{number}{suffix}")
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Nano-units and format of Kubernetes' `TestQuantityParse` table (its `decQuantity(m, e,
    /// format)` is m * 10^e).
    #[test]
    fn parses_kubernetes_examples() {
        use Format::*;
        let cases: &[(&str, i128, i32, Format)] = &[
            ("0", 0, 0, DecimalSI),
            ("0n", 0, 0, DecimalSI),
            ("0Ki", 0, 0, BinarySI),
            ("0Ti", 0, 0, BinarySI),
            ("1", 1, 0, DecimalSI),
            ("1Ki", 1024, 0, BinarySI),
            ("8Ki", 8 * 1024, 0, BinarySI),
            ("7Mi", 7 << 20, 0, BinarySI),
            ("6Gi", 6 << 30, 0, BinarySI),
            ("5Ti", 5 << 40, 0, BinarySI),
            ("4Pi", 4 << 50, 0, BinarySI),
            ("3Ei", 3 << 60, 0, BinarySI),
            ("100Ti", 100 << 40, 0, BinarySI),
            ("5n", 5, -9, DecimalSI),
            ("4u", 4, -6, DecimalSI),
            ("3m", 3, -3, DecimalSI),
            ("8k", 8, 3, DecimalSI),
            ("50k", 5, 4, DecimalSI),
            ("7M", 7, 6, DecimalSI),
            ("6G", 6, 9, DecimalSI),
            ("300T", 3, 14, DecimalSI),
            ("2P", 2, 15, DecimalSI),
            ("1E", 1, 18, DecimalSI),
            ("1E-3", 1, -3, DecimalExponent),
            ("1e3", 1, 3, DecimalExponent),
            ("1E18", 1, 18, DecimalExponent),
            ("1e14", 1, 14, DecimalExponent),
            ("100.035k", 100035, 0, DecimalSI),
            ("0.001", 1, -3, DecimalSI),
            ("0.0005k", 5, -1, DecimalSI),
            ("0.00050k", 5, -1, DecimalSI),
            ("0.50000", 5, -1, DecimalSI),
            ("0.5e-2", 5, -3, DecimalExponent),
            ("10.035M", 10035, 3, DecimalSI),
            ("1.2e3", 12, 2, DecimalExponent),
            ("1.3E+6", 13, 5, DecimalExponent),
            ("1.53E12", 153, 10, DecimalExponent),
            ("1.7E18", 17, 17, DecimalExponent),
            ("9.01", 901, -2, DecimalSI),
            ("7.123456M", 7123456, 0, DecimalSI),
            ("6.987654321G", 6987654321, 0, DecimalSI),
            ("1.01E", 101, 16, DecimalSI),
            // Rounded up to a whole nano-unit.
            ("3.001n", 4, -9, DecimalSI),
            ("1.1E-9", 2, -9, DecimalExponent),
            ("0.0000000001", 1, -9, DecimalSI),
            ("0.00000000050", 1, -9, DecimalSI),
            ("0.5e-9", 1, -9, DecimalExponent),
            ("0.9n", 1, -9, DecimalSI),
            ("0.00000012345", 124, -9, DecimalSI),
            ("12E", 12, 18, DecimalSI),
            // Fractional binary values.
            ("100.035Ki", 10243584, -2, BinarySI),
            ("0.5Mi", 512 * 1024, 0, BinarySI),
            ("0.05Gi", 536870912, -1, BinarySI),
            ("0.025Ti", 274877906944, -1, BinarySI),
            // "Things written by trolls".
            ("0.000000000001Ki", 2, -9, DecimalSI),
            (".001", 1, -3, DecimalSI),
            (".0001k", 100, -3, DecimalSI),
            ("1.", 1, 0, DecimalSI),
            ("1.G", 1, 9, DecimalSI),
        ];
        for &(text, mantissa, exponent, format) in cases {
            let nanos = mantissa * 10i128.pow((exponent + 9) as u32);
            for (sign, signed) in [("", nanos), ("+", nanos), ("-", -nanos)] {
                let input = format!("{sign}{text}");
                let got = q(&input);
                assert_eq!(got.nano_value(), signed, "{input}");
                assert_eq!(got.format(), format, "{input}");
            }
        }
    }

    #[test]
    fn binary_quantities_are_capped_at_the_int64_maximum() {
        for text in [
            "9Ei",
            "9223372036854775807Ki",
            "99999999999999999999999999Ei",
        ] {
            let got = q(text);
            assert_eq!(got.value(), i64::MAX, "{text}");
            assert_eq!(got.format(), Format::BinarySI);
            assert_eq!(q(&format!("-{text}")).value(), -i64::MAX, "-{text}");
        }
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        use QuantityError::*;
        let cases = [
            ("", Format),
            ("1.1.M", Format),
            ("1+1.0M", Format),
            ("0.1mi", Suffix),
            ("0.1am", Format),
            ("aoeu", Format),
            ("abc", Format),
            (".5i", Suffix),
            ("1i", Suffix),
            ("-3.01i", Suffix),
            ("-3.01e-", Suffix),
            ("1e", Suffix),
            ("1ki", Suffix),
            ("1KI", Format),
            ("1e4294967297", Suffix),
            ("1E2147483648", Suffix),
            (" 1", Format),
            ("1 ", Format),
            ("1e3e3", Format),
            ("１", Format),
            ("1e29", Numeric),
            ("100000000000000000000000000000", Numeric),
        ];
        for (text, error) in cases {
            assert_eq!(Quantity::parse(text), Err(error), "{text:?}");
        }
        assert_eq!(
            Format.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(Suffix.to_string(), "unable to parse quantity's suffix");
    }

    #[test]
    fn lenient_where_kubernetes_is_lenient() {
        // Kubernetes' scanner lets the number be empty.
        for text in ["+", "-", ".", "-.", "m", "Ki", "e3", "00", "-0"] {
            assert!(q(text).is_zero(), "{text}");
        }
        assert_eq!(q("1e-2147483647").to_string(), "1e-9");
        assert!(q("0e2147483647").is_zero());
        assert_eq!(q("99999999999999999999999999999").value(), i64::MAX);
        assert_eq!(
            q("99999999999999999999999999999").nano_value(),
            MAX_NANOS - (NANO - 1)
        );
        // Many fraction digits still round exactly.
        assert_eq!(
            q("0.0000000010000000000000000000000000000000000000001").nano_value(),
            2
        );
        assert_eq!(
            q("1.000000000000000000000000000000000000000000Ki").value(),
            1024
        );
        assert_eq!(
            q("0.999999999999999999999999999999999999Ei").nano_value(),
            (1i128 << 60) * NANO
        );
    }

    #[test]
    fn canonical_forms_are_kubernetes() {
        let cases = [
            // Kubernetes' doc comment.
            ("1.5", "1500m"),
            ("1.5Gi", "1536Mi"),
            // TestQuantityParseEmit.
            ("1Ki", "1Ki"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            // The alternates of TestQuantityString.
            ("1024Mi", "1Gi"),
            ("307200Ki", "300Mi"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("5000m", "5"),
            ("0.5", "500m"),
            ("1000M", "1G"),
            ("0.001T", "1G"),
            ("1000u", "1m"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            ("1000E", "1e21"),
            ("5000E", "5e21"),
            ("1000000E", "1e24"),
            (".001e12", "1e9"),
            ("0.001e0", "1e-3"),
            ("1000e-12", "1e-9"),
            ("80e-3", "80e-3"),
            ("300e6", "300e6"),
            ("3e3", "3e3"),
            ("1e3", "1e3"),
            ("00", "0"),
            // The brief's.
            ("1000m", "1"),
            ("1536Mi", "1536Mi"),
            ("1025", "1025"),
            ("1025Ki", "1025Ki"),
            ("1234567M", "1234567M"),
            ("1234567m", "1234567m"),
            ("100m", "100m"),
            ("10m", "10m"),
            ("1e4", "10e3"),
            ("1e-1", "100e-3"),
            ("0.1Gi", "107374182400m"),
            ("100.035Ki", "102435840m"),
            ("9Ei", "9223372036854775807"),
        ];
        for (input, canonical) in cases {
            assert_eq!(q(input).to_string(), canonical, "{input}");
            // Canonical forms read back as themselves.
            assert_eq!(q(canonical).to_string(), canonical, "{canonical}");
            assert_eq!(q(canonical), q(input));
            if !q(input).is_zero() {
                assert_eq!(q(&format!("-{input}")).to_string(), format!("-{canonical}"));
            }
        }
    }

    #[test]
    fn constructed_quantities_print_canonically() {
        assert_eq!(Quantity::new(1 << 30, Format::BinarySI).to_string(), "1Gi");
        assert_eq!(Quantity::new(5, Format::BinarySI).to_string(), "5");
        assert_eq!(
            Quantity::new_milli(500, Format::BinarySI).to_string(),
            "500m"
        );
        assert_eq!(Quantity::new(2000, Format::BinarySI).to_string(), "2000");
        assert_eq!(Quantity::new(-2000, Format::BinarySI).to_string(), "-2000");
        let scaled = |value, scale| Quantity::new_scaled(value, scale).map(|q| q.to_string());
        assert_eq!(scaled(1000, Scale::MEGA).as_deref(), Some("1G"));
        assert_eq!(scaled(80, Scale::NANO).as_deref(), Some("80n"));
        assert_eq!(scaled(5, Scale(21)).as_deref(), Some("5e21"));
        assert_eq!(scaled(1, Scale(-10)), None);
        assert_eq!(scaled(i64::MAX, Scale(18)), None);
        assert_eq!(Quantity::new(i64::MIN, Format::BinarySI).value(), i64::MIN);
        assert_eq!(
            Quantity::new_milli(-9010, Format::DecimalSI).to_string(),
            "-9010m"
        );
        assert_eq!(Quantity::new(0, Format::DecimalExponent).to_string(), "0");
        // 2^70 has no binary suffix: its decimal digits (TestBinarySIPastEiArithmeticRoundTrip).
        let ei = q("1Ei");
        let mut sum = ei;
        for _ in 1..1024 {
            sum = sum.checked_add(&ei).unwrap();
        }
        assert_eq!(sum.to_string(), "1180591620717411303424");
        assert_eq!(q(&sum.to_string()), sum);
    }

    #[test]
    fn values_round_up() {
        let cases = [
            ("1", 1, 1000),
            ("1.5", 2, 1500),
            ("100m", 1, 100),
            ("0.1m", 1, 1),
            ("1n", 1, 1),
            ("9m", 1, 9),
            ("1Gi", 1 << 30, 1000 << 30),
            ("0.1Gi", 107374183, 107374182400),
            ("-1.5", -2, -1500),
            ("-0.1m", -1, -1),
            ("9.01", 10, 9010),
            ("1E", 1_000_000_000_000_000_000, i64::MAX),
            ("-1E", -1_000_000_000_000_000_000, i64::MIN),
        ];
        for (text, value, milli) in cases {
            assert_eq!(q(text).value(), value, "{text}");
            assert_eq!(q(text).milli_value(), milli, "{text}");
        }
        // TestQuantityRoundUp's values at each scale.
        let nine = q("9.01");
        assert_eq!(nine.scaled_value(Scale(-3)), 9010);
        assert_eq!(nine.scaled_value(Scale(-2)), 901);
        assert_eq!(nine.scaled_value(Scale(-1)), 91);
        assert_eq!(nine.scaled_value(Scale(1)), 1);
        assert_eq!(nine.scaled_value(Scale(2)), 1);
        assert_eq!(q("1").scaled_value(Scale(40)), 1);
        assert_eq!(q("1n").scaled_value(Scale(-30)), i64::MAX);
        assert_eq!(q("1n").scaled_value(Scale::NANO), 1);
        assert_eq!(q("1").scaled_value(Scale(-40)), i64::MAX);
        assert_eq!(q("0").scaled_value(Scale(-40)), 0);
    }

    #[test]
    fn compares_values_not_spellings() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("100m") > q("50m"));
        assert!(q("10000T") > q("100Gi"));
        assert!(q("-1") < q("0"));
        assert!(q("1001m") > q("1"));
        assert!(q("999999999n") < q("1"));
    }

    #[test]
    fn arithmetic_keeps_kubernetes_formats() {
        let zero = q("0");
        for text in ["100m", "1Gi"] {
            let value = q(text);
            assert_eq!(value.checked_add(&zero).unwrap().to_string(), text);
            assert_eq!(zero.checked_add(&value).unwrap().to_string(), text);
            assert_eq!(value.checked_sub(&zero).unwrap().to_string(), text);
            assert_eq!(
                zero.checked_sub(&value).unwrap().to_string(),
                format!("-{text}")
            );
        }
        assert_eq!(q("1").checked_sub(&q("1")).unwrap().to_string(), "0");
        let big = q("99999999999999999999999999999");
        assert!(big.checked_add(&q("1")).is_none());
    }

    #[test]
    fn api_quantities_trim_whitespace_like_unmarshal_json() {
        assert_eq!(
            Quantity::from_api(&ApiQuantity(" 1Gi\n".into())),
            Ok(q("1Gi"))
        );
        assert_eq!(
            Quantity::try_from(&ApiQuantity("abc".into())),
            Err(QuantityError::Format)
        );
        assert_eq!(q("1500m").to_api(), ApiQuantity("1500m".into()));
    }

    /// The milli-value of `<digits>[.<digits>][m]`, from its digits alone: the digits as one
    /// integer, scaled by the suffix and the decimal point, divided rounding up.
    fn reference_millis(text: &str) -> u128 {
        let (number, per_unit) = match text.strip_suffix('m') {
            Some(n) => (n, 1),
            None => (text, 1000),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits: u128 = format!("{whole}{fraction}").parse().unwrap();
        let divisor = 10u128.pow(fraction.len() as u32);
        (digits * per_unit).div_ceil(divisor)
    }

    /// Every CPU amount from 1m to 200 cores, as `NNNm` and as a decimal number of cores, reads
    /// as exactly its millicores (f64 parsing got about one in fifteen wrong).
    #[test]
    fn every_millicore_up_to_200_cores_is_exact() {
        for millis in 1..=200_000i64 {
            let m = format!("{millis}m");
            assert_eq!(q(&m).milli_value(), millis, "{m}");
            let cores = format!("{}.{:03}", millis / 1000, millis % 1000);
            assert_eq!(q(&cores).milli_value(), millis, "{cores}");
            assert_eq!(reference_millis(&cores), millis as u128, "{cores}");
            // Shorter spellings: trailing zeros of the fraction dropped, "0." dropped.
            let short = cores.trim_end_matches('0').trim_end_matches('.');
            let short = short.strip_prefix('0').unwrap_or(short);
            assert_eq!(q(short).milli_value(), millis, "{short}");
            assert_eq!(q(&cores).value(), (millis + 999) / 1000, "{cores}");
        }
        for text in ["0.009", "1.5", "0.0001", "2.0005", "199.9999", "0.1001m"] {
            assert_eq!(
                q(text).milli_value() as u128,
                reference_millis(text),
                "{text}"
            );
        }
        assert_eq!(q("9m").milli_value(), 9);
        assert_eq!(q("0.009").milli_value(), 9);
    }
}
