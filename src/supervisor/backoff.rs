//! Restart backoff: exponential, bounded, with jitter.

use std::time::Duration;

/// Delay between restarts: exponential, bounded, with jitter.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasklets::supervisor::Backoff;
///
/// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(80));
/// assert_eq!(b.delay(0), Duration::from_millis(10));
/// assert_eq!(b.delay(2), Duration::from_millis(40));
/// assert_eq!(b.delay(10), Duration::from_millis(80)); // bounded
/// let j = b.jitter(0.5).delay(1);
/// assert!(j >= Duration::from_millis(10) && j <= Duration::from_millis(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// No delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// assert_eq!(Backoff::none().delay(0), Duration::ZERO);
    /// assert_eq!(Backoff::none().delay(7), Duration::ZERO);
    /// ```
    pub fn none() -> Backoff {
        Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// `initial`, doubled at each consecutive restart of the same child, at most `max`.
    ///
    /// A `max` below `initial` is raised to `initial`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let b = Backoff::exponential(ms(5), ms(15));
    /// assert_eq!([b.delay(0), b.delay(1), b.delay(2)], [ms(5), ms(10), ms(15)]);
    /// assert_eq!(Backoff::exponential(ms(5), ms(1)).delay(3), ms(5)); // max raised to initial
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            jitter: 0.0,
        }
    }

    /// Spreads each delay uniformly over ±`fraction` of it (0.0 to 1.0).
    ///
    /// # Panics
    ///
    /// Panics if `fraction` is not within 0.0..=1.0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.1);
    /// let d = b.delay(0);
    /// assert!(d >= Duration::from_millis(90) && d <= Duration::from_millis(110));
    /// assert!(std::panic::catch_unwind(|| Backoff::none().jitter(1.5)).is_err());
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Backoff {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "jitter must be within 0.0..=1.0"
        );
        self.jitter = fraction;
        self
    }

    /// The delay before restart number `attempt` (0-based) of one child.
    ///
    /// The arithmetic saturates: a delay too long to represent is [`Duration::MAX`], which a supervisor
    /// takes as "never" (the child waits for its restart until the supervisor shuts down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasklets::supervisor::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
    /// assert_eq!(b.delay(3), Duration::from_secs(8));
    /// assert_eq!(b.delay(u32::MAX), Duration::from_secs(60)); // no overflow
    ///
    /// let never = Backoff::exponential(Duration::MAX, Duration::MAX).jitter(0.5);
    /// assert!(never.delay(7) >= Duration::MAX / 2); // saturates instead of panicking
    /// ```
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1_u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        if self.jitter == 0.0 || base.is_zero() {
            return base;
        }
        let spread = (fastrand::f64() * 2.0 - 1.0) * self.jitter;
        // `Duration::mul_f64` panics when the product overflows; saturate instead.
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + spread)).unwrap_or(Duration::MAX)
    }
}
