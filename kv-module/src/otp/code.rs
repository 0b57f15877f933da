//! [`OtpCode`]: a one-time code, drawn from the OS CSPRNG without modulo
//! bias, that never prints.

use std::fmt;

use subtle::ConstantTimeEq;

/// A one-time code: decimal digits to send to the user (by mail, SMS).
/// `Debug` and `Display` print `[redacted]`; read it with
/// [`expose`](Self::expose) where it is sent, never to log it.
///
/// ```
/// use kv_module::otp::OtpCode;
///
/// let code = OtpCode::generate(6).expect("the OS CSPRNG is available");
/// assert_eq!(code.expose().len(), 6);
/// assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
/// assert_eq!(format!("{code:?}"), "OtpCode([redacted])");
/// ```
#[derive(Clone)]
pub struct OtpCode(String);

impl PartialEq for OtpCode {
    /// Constant-time, as befits a secret.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for OtpCode {}

impl OtpCode {
    /// `digits` uniformly random decimal digits. Each digit comes from one
    /// random byte below 250 (bytes 250–255 are drawn again), so every
    /// digit is equally likely: no modulo bias.
    ///
    /// # Errors
    ///
    /// When the operating system cannot provide random bytes.
    pub fn generate(digits: usize) -> Result<Self, getrandom::Error> {
        let mut code = String::with_capacity(digits);
        let mut buffer = [0_u8; 16];
        while code.len() < digits {
            getrandom::fill(&mut buffer)?;
            for byte in buffer {
                if byte < 250 && code.len() < digits {
                    code.push(char::from(b'0' + byte % 10));
                }
            }
        }
        Ok(Self(code))
    }

    /// The digits, to send to the user. Never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

impl fmt::Display for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_uniform_enough() {
        let mut counts = [0_u32; 10];
        for _ in 0..2_000 {
            let code = OtpCode::generate(10).unwrap();
            assert_eq!(code.expose().len(), 10);
            for b in code.expose().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 20,000 digits: 2,000 expected each; 6 sigma is about ±255.
        for (digit, count) in counts.iter().enumerate() {
            assert!((1_700..=2_300).contains(count), "{digit}: {count}");
        }
        assert!(!format!("{}", OtpCode::generate(6).unwrap()).contains(char::is_numeric));
    }
}
