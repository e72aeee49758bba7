//! Wall-clock times as a report shows them: an instant plus the centre's
//! UTC offset (China Standard Time, +08:00, unless configured otherwise).
//!
//! The index stores Unix milliseconds; reports need calendar dates in three
//! spellings (on the page, in PDF dates, in DICOM DA/TM). A civil-from-days
//! conversion is a dozen lines, so no date crate is pulled in for it.

/// An instant and the offset it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub unix_ms: i64,
    pub offset_minutes: i32,
}

/// Calendar fields of a [`Timestamp`] in its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (the
/// inverse of `civil_from_days`, H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    pub fn new(unix_ms: i64, offset_minutes: i32) -> Timestamp {
        Timestamp { unix_ms, offset_minutes }
    }

    pub fn civil(&self) -> Civil {
        let local_secs = self.unix_ms.div_euclid(1000) + i64::from(self.offset_minutes) * 60;
        let (year, month, day) = civil_from_days(local_secs.div_euclid(86_400));
        let secs = local_secs.rem_euclid(86_400) as u32;
        Civil { year, month, day, hour: secs / 3600, minute: secs / 60 % 60, second: secs % 60 }
    }

    /// `2026-11-23`
    pub fn date(&self) -> String {
        let c = self.civil();
        format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
    }

    /// `14:05`
    pub fn time(&self) -> String {
        let c = self.civil();
        format!("{:02}:{:02}", c.hour, c.minute)
    }

    /// `2026-11-23 14:05`
    pub fn date_time(&self) -> String {
        format!("{} {}", self.date(), self.time())
    }

    /// PDF date string, e.g. `D:20261123140500+08'00'`.
    pub fn pdf_date(&self) -> String {
        let c = self.civil();
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        format!(
            "D:{:04}{:02}{:02}{:02}{:02}{:02}{sign}{:02}'{:02}'",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            off / 60,
            off % 60
        )
    }

    /// DICOM DA, e.g. `20261123`.
    pub fn dicom_date(&self) -> String {
        let c = self.civil();
        format!("{:04}{:02}{:02}", c.year, c.month, c.day)
    }

    /// DICOM TM, e.g. `140500`.
    pub fn dicom_time(&self) -> String {
        let c = self.civil();
        format!("{:02}{:02}{:02}", c.hour, c.minute, c.second)
    }

    /// DICOM DT with offset, e.g. `20261123140500+0800`.
    pub fn dicom_datetime(&self) -> String {
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        format!("{}{}{sign}{:02}{:02}", self.dicom_date(), self.dicom_time(), off / 60, off % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(unix_ms: i64, offset: i32, expected: &str) {
        assert_eq!(Timestamp::new(unix_ms, offset).pdf_date(), expected, "{unix_ms} at {offset}");
    }

    #[test]
    fn days_and_dates_convert_both_ways() {
        for days in [-719_468, -1, 0, 11_016, 20_515, 20_880, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(2026, 3, 10) - days_from_civil(2026, 2, 15), 23);
    }

    #[test]
    fn dates_in_the_centres_offset() {
        check(0, 0, "D:19700101000000+00'00'");
        check(0, 480, "D:19700101080000+08'00'");
        // 2026-11-23T16:30:05Z is past midnight in Beijing.
        check(1_795_451_405_000, 480, "D:20261124003005+08'00'");
        check(951_782_400_000, 0, "D:20000229000000+00'00'");
        check(-1000, -300, "D:19691231185959-05'00'");
        assert_eq!(Timestamp::new(1_795_451_405_000, 480).dicom_datetime(), "20261124003005+0800");
    }
}
