//! Service hours (SPEC section 7): `SERVICE_HOURS=07:30-22:00@Europe/Paris` opens the consumer API
//! every day from 07:30 to 22:00 Paris time; outside it answers 503 with `Retry-After`.
//!
//! Whether it is open depends only on the wall-clock time in the zone, so daylight saving is
//! followed as people there live it. Windows may cross midnight (`22:00-06:00@…`).

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use thiserror::Error;

/// Why a `SERVICE_HOURS` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceHoursError {
    #[error("`{0}` is not of the form HH:MM-HH:MM@Area/City, e.g. 07:30-22:00@Europe/Paris")]
    BadFormat(String),
    #[error("`{0}` is not a time of day written HH:MM, from 00:00 to 23:59")]
    BadTime(String),
    #[error("`{0}` is not a known IANA time zone, such as Europe/Paris")]
    UnknownZone(String),
    #[error("opening and closing times are both {0}: give a window that opens and closes")]
    OpenEqualsClose(String),
}

/// A daily window of wall-clock time in one time zone: open from `open` (included) to `close`
/// (excluded), every day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceHours {
    open: NaiveTime,
    close: NaiveTime,
    tz: Tz,
}

/// Zone offsets stay within UTC-12..UTC+14, so the instants showing a given wall-clock time lie
/// within these bounds of that wall-clock time read as UTC.
const WALL_CLOCK_SEARCH_RADIUS: TimeDelta = TimeDelta::hours(15);

/// Days after today searched for the next opening; one is enough unless a zone skips a whole day.
const DAYS_AHEAD: u64 = 3;

/// What `retry_after` answers should no opening be found (only a zone with no day left in which
/// the window exists could do that).
const FALLBACK_RETRY_AFTER: u64 = 3600;

impl ServiceHours {
    pub fn new(open: NaiveTime, close: NaiveTime, tz: Tz) -> Result<Self, ServiceHoursError> {
        if open == close {
            return Err(ServiceHoursError::OpenEqualsClose(
                open.format("%H:%M").to_string(),
            ));
        }
        Ok(ServiceHours { open, close, tz })
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.contains(now.with_timezone(&self.tz).time())
    }

    /// None when open at `now`; Some(seconds until it opens again, >= 1) when closed.
    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<u64> {
        if self.is_open(now) {
            return None;
        }
        let Some(opening) = self.next_opening(now) else {
            return Some(FALLBACK_RETRY_AFTER);
        };
        Some(whole_seconds_rounded_up(opening - now).max(1))
    }

    fn contains(&self, wall_time: NaiveTime) -> bool {
        if self.open < self.close {
            self.open <= wall_time && wall_time < self.close
        } else {
            // Crosses midnight: open late in the day and early in the next.
            self.open <= wall_time || wall_time < self.close
        }
    }

    /// The first instant after `now` at which it is open. Closed becomes open only when the
    /// wall clock reaches the opening time (or jumps over it, in a spring-forward gap), or when
    /// it is set back into the window (a fall-back overlap that repeats the closing time); the
    /// candidates below are those instants on the days around `now`.
    fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        let first_day = today.checked_sub_days(Days::new(1))?;
        (0..=DAYS_AHEAD + 1)
            .filter_map(|offset| first_day.checked_add_days(Days::new(offset)))
            .flat_map(|date| self.opening_candidates(date))
            .filter(|&instant| instant > now && self.is_open(instant))
            .min()
    }

    fn opening_candidates(&self, date: NaiveDate) -> Vec<DateTime<Utc>> {
        let mut candidates = match self.tz.from_local_datetime(&date.and_time(self.open)) {
            LocalResult::Single(at) => vec![at.to_utc()],
            // A fall-back overlap shows the opening time twice; both can open the window.
            LocalResult::Ambiguous(first, second) => vec![first.to_utc(), second.to_utc()],
            // A spring-forward gap skips it: the window opens at the first instant after the gap.
            LocalResult::None => first_instant_showing_at_least(self.tz, date.and_time(self.open))
                .into_iter()
                .collect(),
        };
        // The clock set back over the closing time re-enters the window at the transition.
        if let LocalResult::Ambiguous(first, second) =
            self.tz.from_local_datetime(&date.and_time(self.close))
        {
            candidates.extend(offset_change_between(
                self.tz,
                first.to_utc(),
                second.to_utc(),
            ));
        }
        candidates
    }
}

fn wall_clock(tz: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&tz).naive_local()
}

fn utc_offset(tz: Tz, instant: DateTime<Utc>) -> TimeDelta {
    wall_clock(tz, instant) - instant.naive_utc()
}

/// The first instant whose wall-clock time is `wall` or later, for a `wall` that a
/// spring-forward gap skips: the instant the clock jumps over it.
fn first_instant_showing_at_least(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let as_utc = wall.and_utc();
    let before = as_utc.checked_sub_signed(WALL_CLOCK_SEARCH_RADIUS)?;
    let after = as_utc.checked_add_signed(WALL_CLOCK_SEARCH_RADIUS)?;
    first_instant_where(before, after, |instant| wall_clock(tz, instant) >= wall)
}

/// The instant of the one offset change in `(earlier, later]`, such as a fall-back transition.
fn offset_change_between(
    tz: Tz,
    earlier: DateTime<Utc>,
    later: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let later_offset = utc_offset(tz, later);
    first_instant_where(earlier, later, |instant| {
        utc_offset(tz, instant) == later_offset
    })
}

/// Bisects to the whole second: the first instant in `(low, high]` where `holds` turns true,
/// given it is false at `low`, true at `high` and changes once in between. Zone transitions
/// fall on whole seconds, so the answer is exact.
fn first_instant_where(
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    holds: impl Fn(DateTime<Utc>) -> bool,
) -> Option<DateTime<Utc>> {
    let (mut low, mut high) = (low.timestamp(), high.timestamp());
    let at = |seconds: i64| DateTime::from_timestamp(seconds, 0);
    if holds(at(low)?) || !holds(at(high)?) {
        return None;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if holds(at(middle)?) {
            high = middle;
        } else {
            low = middle;
        }
    }
    at(high)
}

/// `Retry-After` counts whole seconds; rounding up never sends a client back too early.
fn whole_seconds_rounded_up(delta: TimeDelta) -> u64 {
    let seconds = delta.num_seconds() + i64::from(delta.subsec_nanos() > 0);
    u64::try_from(seconds).unwrap_or(0)
}

impl FromStr for ServiceHours {
    type Err = ServiceHoursError;

    /// `HH:MM-HH:MM@Area/City`, e.g. `07:30-22:00@Europe/Paris` or `22:00-06:00@UTC`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad_format = || ServiceHoursError::BadFormat(text.to_owned());
        let (window, zone) = text.split_once('@').ok_or_else(bad_format)?;
        let (open, close) = window.split_once('-').ok_or_else(bad_format)?;
        if zone.is_empty() || zone.contains('@') || close.contains('-') {
            return Err(bad_format());
        }
        let open = parse_time_of_day(open)?;
        let close = parse_time_of_day(close)?;
        let tz = zone
            .parse::<Tz>()
            .map_err(|_| ServiceHoursError::UnknownZone(zone.to_owned()))?;
        ServiceHours::new(open, close, tz)
    }
}

/// Exactly `HH:MM`: chrono alone would also take `7:30`.
fn parse_time_of_day(text: &str) -> Result<NaiveTime, ServiceHoursError> {
    let bad_time = || ServiceHoursError::BadTime(text.to_owned());
    let shaped = text.len() == 5
        && text.bytes().enumerate().all(|(index, byte)| {
            if index == 2 {
                byte == b':'
            } else {
                byte.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad_time());
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| bad_time())
}

/// Written back in the form it is read in.
impl fmt::Display for ServiceHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}@{}",
            self.open.format("%H:%M"),
            self.close.format("%H:%M"),
            self.tz.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(text: &str) -> ServiceHours {
        text.parse().unwrap()
    }

    fn paris() -> ServiceHours {
        hours("07:30-22:00@Europe/Paris")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    const HOUR: u64 = 3600;

    #[test]
    fn winter_edges_in_paris_cet() {
        // CET, UTC+1: 07:30 local is 06:30Z, 22:00 local is 21:00Z.
        assert_eq!(paris().retry_after(at("2026-01-15T06:29:59Z")), Some(1));
        assert_eq!(paris().retry_after(at("2026-01-15T06:30:00Z")), None);
        assert_eq!(paris().retry_after(at("2026-01-15T20:59:59Z")), None);
        assert_eq!(
            paris().retry_after(at("2026-01-15T21:00:00Z")),
            Some(9 * HOUR + 1800)
        );
        assert_eq!(
            paris().retry_after(at("2026-01-15T00:00:00Z")),
            Some(6 * HOUR + 1800)
        );
        assert_eq!(
            paris().retry_after(at("2026-01-15T23:59:59Z")),
            Some(6 * HOUR + 1801)
        );
    }

    #[test]
    fn summer_edges_in_paris_cest() {
        // CEST, UTC+2: 07:30 local is 05:30Z, 22:00 local is 20:00Z.
        assert_eq!(paris().retry_after(at("2026-07-15T05:29:59Z")), Some(1));
        assert_eq!(paris().retry_after(at("2026-07-15T05:30:00Z")), None);
        assert_eq!(paris().retry_after(at("2026-07-15T06:29:59Z")), None);
        assert_eq!(paris().retry_after(at("2026-07-15T19:59:59Z")), None);
        assert_eq!(
            paris().retry_after(at("2026-07-15T20:00:00Z")),
            Some(9 * HOUR + 1800)
        );
        assert_eq!(
            paris().retry_after(at("2026-07-15T20:59:59Z")),
            Some(8 * HOUR + 1801)
        );
    }

    #[test]
    fn fractions_of_a_second_round_up() {
        assert_eq!(paris().retry_after(at("2026-01-15T06:29:59.001Z")), Some(1));
        assert_eq!(paris().retry_after(at("2026-01-15T06:29:58.500Z")), Some(2));
        assert_eq!(paris().retry_after(at("2026-01-15T20:59:59.999Z")), None);
    }

    #[test]
    fn spring_forward_day_in_paris() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z, so the night is an hour shorter.
        assert_eq!(
            paris().retry_after(at("2026-03-28T21:00:00Z")),
            Some(8 * HOUR + 1800)
        );
        assert_eq!(
            paris().retry_after(at("2026-03-29T00:59:59Z")),
            Some(4 * HOUR + 1801)
        );
        assert_eq!(
            paris().retry_after(at("2026-03-29T01:00:00Z")),
            Some(4 * HOUR + 1800)
        );
        assert_eq!(paris().retry_after(at("2026-03-29T05:29:59Z")), Some(1));
        assert_eq!(paris().retry_after(at("2026-03-29T05:30:00Z")), None);
        assert_eq!(paris().retry_after(at("2026-03-29T19:59:59Z")), None);
        assert_eq!(
            paris().retry_after(at("2026-03-29T20:00:00Z")),
            Some(9 * HOUR + 1800)
        );
    }

    #[test]
    fn fall_back_day_in_paris() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z, so the night is an hour longer.
        assert_eq!(paris().retry_after(at("2026-10-24T19:59:59Z")), None);
        assert_eq!(
            paris().retry_after(at("2026-10-24T20:00:00Z")),
            Some(10 * HOUR + 1800)
        );
        assert_eq!(
            paris().retry_after(at("2026-10-25T00:59:59Z")),
            Some(5 * HOUR + 1801)
        );
        assert_eq!(
            paris().retry_after(at("2026-10-25T01:00:00Z")),
            Some(5 * HOUR + 1800)
        );
        assert_eq!(paris().retry_after(at("2026-10-25T06:29:59Z")), Some(1));
        assert_eq!(paris().retry_after(at("2026-10-25T06:30:00Z")), None);
        assert_eq!(paris().retry_after(at("2026-10-25T20:59:59Z")), None);
        assert_eq!(
            paris().retry_after(at("2026-10-25T21:00:00Z")),
            Some(9 * HOUR + 1800)
        );
    }

    #[test]
    fn an_opening_time_skipped_by_spring_forward_opens_right_after_the_gap() {
        // 02:30 does not exist on 2026-03-29 in Paris: the clock jumps from 02:00 to 03:00 at 01:00Z.
        let night = hours("02:30-05:00@Europe/Paris");
        assert_eq!(night.retry_after(at("2026-03-29T00:30:00Z")), Some(1800));
        assert_eq!(night.retry_after(at("2026-03-29T00:59:59Z")), Some(1));
        assert_eq!(night.retry_after(at("2026-03-29T01:00:00Z")), None);
        assert_eq!(night.retry_after(at("2026-03-29T02:59:59Z")), None);
        // 05:00 CEST is 03:00Z; the next opening is 02:30 CEST on the 30th, 00:30Z.
        assert_eq!(
            night.retry_after(at("2026-03-29T03:00:00Z")),
            Some(21 * HOUR + 1800)
        );
    }

    #[test]
    fn a_window_inside_the_gap_waits_for_the_next_day() {
        let skipped = hours("02:00-02:30@Europe/Paris");
        // After the jump the clock shows 03:00, already past the window: next is 02:00 CEST on
        // the 30th, 00:00Z.
        assert_eq!(
            skipped.retry_after(at("2026-03-29T00:59:59Z")),
            Some(23 * HOUR + 1)
        );
        assert_eq!(
            skipped.retry_after(at("2026-03-29T01:00:00Z")),
            Some(23 * HOUR)
        );
        assert_eq!(skipped.retry_after(at("2026-03-30T00:00:00Z")), None);
    }

    #[test]
    fn an_opening_time_repeated_by_fall_back_opens_at_its_first_showing() {
        // 02:30 shows twice on 2026-10-25 in Paris: 00:30Z (CEST) and 01:30Z (CET).
        let night = hours("02:30-06:00@Europe/Paris");
        assert_eq!(night.retry_after(at("2026-10-25T00:00:00Z")), Some(1800));
        assert_eq!(night.retry_after(at("2026-10-25T00:30:00Z")), None);
        // At 01:00Z the clock is set back from 03:00 to 02:00, before the window: closed until
        // 02:30 shows again at 01:30Z.
        assert_eq!(night.retry_after(at("2026-10-25T01:00:00Z")), Some(1800));
        assert_eq!(night.retry_after(at("2026-10-25T01:30:00Z")), None);
    }

    #[test]
    fn the_second_showing_of_a_repeated_hour_can_reopen() {
        let short = hours("02:15-02:45@Europe/Paris");
        // Open 00:15Z-00:45Z (CEST), closed, then 02:15 CET comes again at 01:15Z.
        assert_eq!(short.retry_after(at("2026-10-25T00:15:00Z")), None);
        assert_eq!(short.retry_after(at("2026-10-25T00:50:00Z")), Some(1500));
        assert_eq!(short.retry_after(at("2026-10-25T01:15:00Z")), None);
        assert_eq!(
            short.retry_after(at("2026-10-25T01:45:00Z")),
            Some(23 * HOUR + 1800)
        );
    }

    #[test]
    fn setting_the_clock_back_into_the_window_reopens_it() {
        let early = hours("01:00-02:30@Europe/Paris");
        // Closes at 02:30 CEST (00:30Z); at 01:00Z the clock goes from 03:00 back to 02:00.
        assert_eq!(early.retry_after(at("2026-10-25T00:29:59Z")), None);
        assert_eq!(early.retry_after(at("2026-10-25T00:30:00Z")), Some(1800));
        assert_eq!(early.retry_after(at("2026-10-25T01:00:00Z")), None);
        // 02:30 CET is 01:30Z; next is 01:00 CET on the 26th, 00:00Z.
        assert_eq!(
            early.retry_after(at("2026-10-25T01:30:00Z")),
            Some(22 * HOUR + 1800)
        );
    }

    #[test]
    fn a_window_across_midnight() {
        let night = hours("22:00-06:00@Europe/Paris");
        // Winter, UTC+1.
        assert_eq!(night.retry_after(at("2026-01-15T20:59:59Z")), Some(1));
        assert_eq!(night.retry_after(at("2026-01-15T21:00:00Z")), None);
        assert_eq!(night.retry_after(at("2026-01-15T23:30:00Z")), None);
        assert_eq!(night.retry_after(at("2026-01-16T04:59:59Z")), None);
        assert_eq!(
            night.retry_after(at("2026-01-16T05:00:00Z")),
            Some(16 * HOUR)
        );
        // Summer, UTC+2.
        assert_eq!(night.retry_after(at("2026-07-15T03:59:59Z")), None);
        assert_eq!(
            night.retry_after(at("2026-07-15T04:00:00Z")),
            Some(16 * HOUR)
        );
        // Over the spring-forward night the window holds one hour less.
        assert_eq!(night.retry_after(at("2026-03-29T03:59:59Z")), None);
        assert_eq!(
            night.retry_after(at("2026-03-29T04:00:00Z")),
            Some(16 * HOUR)
        );
    }

    #[test]
    fn utc_windows() {
        let office = hours("09:00-17:00@UTC");
        assert_eq!(office.retry_after(at("2026-05-01T08:59:59Z")), Some(1));
        assert_eq!(office.retry_after(at("2026-05-01T12:00:00Z")), None);
        assert_eq!(
            office.retry_after(at("2026-05-01T17:00:00Z")),
            Some(16 * HOUR)
        );
    }

    /// Every 7 minutes over the DST weeks and a plain one: when closed, it is still closed a
    /// second before the announced opening, open at it, and closed every 5 minutes in between.
    #[test]
    fn retry_after_always_lands_on_the_next_opening() {
        let windows = [
            paris(),
            hours("22:00-06:00@Europe/Paris"),
            hours("02:30-05:00@Europe/Paris"),
            hours("01:00-02:30@Europe/Paris"),
            hours("00:30-01:30@America/New_York"),
            hours("02:15-04:00@America/New_York"),
            hours("01:45-02:15@Australia/Lord_Howe"),
        ];
        // Around the European, North American and Lord Howe (half-hour) changes, and a plain week.
        let weeks = [
            "2026-03-05T00:00:00Z",
            "2026-03-25T00:00:00Z",
            "2026-04-02T00:00:00Z",
            "2026-06-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
            "2026-10-21T00:00:00Z",
            "2026-10-29T00:00:00Z",
        ];
        for window in windows {
            for start in weeks {
                let start = at(start);
                for step in 0..(8 * 24 * 60 / 7) {
                    let now = start + TimeDelta::minutes(7 * step);
                    let Some(seconds) = window.retry_after(now) else {
                        assert!(window.is_open(now));
                        continue;
                    };
                    let opening = now + TimeDelta::seconds(seconds as i64);
                    assert!(!window.is_open(now), "{window} at {now}");
                    assert!(
                        window.is_open(opening),
                        "{window} at {now}: said {seconds}s"
                    );
                    assert!(
                        !window.is_open(opening - TimeDelta::seconds(1)),
                        "{window} at {now}: open before the {seconds}s announced"
                    );
                    let mut probe = now;
                    while probe < opening {
                        assert!(
                            !window.is_open(probe),
                            "{window} at {now}: open at {probe}, before {seconds}s"
                        );
                        probe += TimeDelta::minutes(5);
                    }
                }
            }
        }
    }

    #[test]
    fn parses_and_writes_back() {
        for text in [
            "07:30-22:00@Europe/Paris",
            "22:00-06:00@America/New_York",
            "00:00-23:59@UTC",
        ] {
            assert_eq!(hours(text).to_string(), text);
        }
        assert_eq!(
            paris(),
            ServiceHours::new(
                NaiveTime::from_hms_opt(7, 30, 0).unwrap(),
                NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
                chrono_tz::Europe::Paris,
            )
            .unwrap()
        );
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let bad_format = |text: &str| ServiceHoursError::BadFormat(text.to_owned());
        let bad_time = |text: &str| ServiceHoursError::BadTime(text.to_owned());
        let cases = [
            ("", bad_format("")),
            ("07:30-22:00", bad_format("07:30-22:00")),
            ("07:30@Europe/Paris", bad_format("07:30@Europe/Paris")),
            ("07:30-22:00@", bad_format("07:30-22:00@")),
            (
                "07:30-22:00-23:00@Europe/Paris",
                bad_format("07:30-22:00-23:00@Europe/Paris"),
            ),
            (
                "07:30-22:00@Europe/Paris@UTC",
                bad_format("07:30-22:00@Europe/Paris@UTC"),
            ),
            ("7:30-22:00@Europe/Paris", bad_time("7:30")),
            ("07:30-22@Europe/Paris", bad_time("22")),
            ("07:60-22:00@Europe/Paris", bad_time("07:60")),
            ("07:30-24:00@Europe/Paris", bad_time("24:00")),
            ("07:30:00-22:00@Europe/Paris", bad_time("07:30:00")),
            ("07h30-22:00@Europe/Paris", bad_time("07h30")),
            (" 07:30-22:00@Europe/Paris", bad_time(" 07:30")),
            (
                "07:30-22:00@Mars/Olympus_Mons",
                ServiceHoursError::UnknownZone("Mars/Olympus_Mons".to_owned()),
            ),
            (
                "07:30-22:00@europe/paris",
                ServiceHoursError::UnknownZone("europe/paris".to_owned()),
            ),
            (
                "07:30-07:30@Europe/Paris",
                ServiceHoursError::OpenEqualsClose("07:30".to_owned()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<ServiceHours>(), Err(expected), "{text:?}");
        }
        let message = "07:30-22:00@Mars/Olympus_Mons"
            .parse::<ServiceHours>()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("Mars/Olympus_Mons") && message.contains("time zone"),
            "{message}"
        );
        let message = "7:30-22:00@Europe/Paris"
            .parse::<ServiceHours>()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`7:30`") && message.contains("HH:MM"),
            "{message}"
        );
    }
}
