//! Realistic traffic of the example Open edX events, for measurements where the
//! content of the records matters (compression): many learners logging in and
//! enrolling in a catalogue of courses, each event with its own ids, names, e-mail
//! addresses and times, the way an LMS emits them.
//!
//! The sequence is fixed (a seeded mixer, no randomness between runs), so two runs,
//! or two codecs, see the same records apart from what the SDK adds per send
//! (`ce_id`, `ce_time`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use event_bus_examples::openedx::{
    CourseData, CourseEnrollmentCreated, CourseEnrollmentData, SessionLoginCompleted, UserData,
    UserPersonalData,
};

/// One event of the traffic: seven logins for every three enrollments.
#[derive(Debug, Clone)]
pub enum TrafficEvent {
    /// A learner logged in (topic `user-login`, keyed by username).
    Login(SessionLoginCompleted),
    /// A learner enrolled in a course (topic `learning-course-enrollment`, keyed by
    /// course key).
    Enrollment(CourseEnrollmentCreated),
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Bilal",
    "Chiara",
    "Dmitri",
    "Emeka",
    "Farah",
    "Gustavo",
    "Hana",
    "Ines",
    "Jonas",
    "Kwame",
    "Lucía",
    "Mei",
    "Nikhil",
    "Olga",
    "Pedro",
    "Quynh",
    "Rania",
    "Sven",
    "Tomasz",
    "Uma",
    "Valentina",
    "Wei",
    "Yusuf",
    "Zofia",
];
const LAST_NAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Haddad",
    "Tanaka",
    "Kowalski",
    "Fernández",
    "Nguyen",
    "Abara",
    "Schmidt",
    "Rossi",
    "Petrov",
    "Singh",
    "Costa",
    "Yilmaz",
    "O'Brien",
    "Kim",
    "Mensah",
    "Dubois",
    "Novak",
];
const MAIL_DOMAINS: &[&str] = &[
    "example.org",
    "mail.example.com",
    "students.example.edu",
    "learners.example.net",
];
const ORGS: &[&str] = &["edX", "MITx", "HarvardX", "DelftX", "UQx", "KyotoUx"];
const SUBJECTS: &[(&str, &str)] = &[
    ("CS50", "Introduction to Computer Science"),
    ("DS101", "Data Science: Foundations"),
    ("PH207", "Principles of Epidemiology"),
    ("ML110", "Machine Learning with Python"),
    ("EC140", "Microeconomics for Everyone"),
    ("AR15", "Architecture and the City"),
    ("BIO7", "Molecular Biology: DNA Replication"),
    ("LAW3", "Contract Law: From Trust to Promise"),
    ("MAT2", "Calculus 1B: Integration"),
    ("ENV9", "Climate Change: The Science"),
];
const RUNS: &[&str] = &["2025_T1", "2025_T2", "3T2025", "2026_Spring"];
const MODES: &[&str] = &["audit", "audit", "verified", "honor", "professional"];

/// How many learners the traffic draws from.
const LEARNERS: u64 = 50_000;

/// `count` events of the traffic: logins and enrollments of many learners.
///
/// ```
/// use event_bus_tests::traffic::{openedx_traffic, TrafficEvent};
/// let events = openedx_traffic(10);
/// assert_eq!(events.len(), 10);
/// assert_eq!(events.iter().filter(|e| matches!(e, TrafficEvent::Enrollment(_))).count(), 3);
/// ```
pub fn openedx_traffic(count: usize) -> Vec<TrafficEvent> {
    let start = Utc
        .with_ymd_and_hms(2025, 9, 1, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH);
    (0..count as u64)
        .map(|i| {
            let draw = mix(i);
            let learner = learner(draw % LEARNERS);
            if i % 10 < 7 {
                TrafficEvent::Login(SessionLoginCompleted { user: learner })
            } else {
                let when = start + Duration::seconds(i as i64 * 3 + (draw >> 40) as i64 % 3);
                TrafficEvent::Enrollment(CourseEnrollmentCreated {
                    enrollment: enrollment(learner, draw >> 20, when),
                })
            }
        })
        .collect()
}

fn learner(n: u64) -> UserData {
    let d = mix(n ^ 0x5eed);
    let first = pick(FIRST_NAMES, d);
    let last = pick(LAST_NAMES, d >> 8);
    let username = format!(
        "{}_{}{}",
        first.to_lowercase(),
        last.to_lowercase().replace('\'', ""),
        n % 997
    );
    UserData {
        id: 100_000 + n as i64,
        is_active: !d.is_multiple_of(50),
        pii: UserPersonalData {
            email: format!("{username}@{}", pick(MAIL_DOMAINS, d >> 16)),
            name: format!("{first} {last}"),
            username,
        },
    }
}

fn enrollment(user: UserData, d: u64, when: DateTime<Utc>) -> CourseEnrollmentData {
    let (code, title) = pick(SUBJECTS, d);
    let org = pick(ORGS, d >> 4);
    let run = pick(RUNS, d >> 8);
    let starts = Utc
        .with_ymd_and_hms(2025, 1 + (d >> 12) as u32 % 12, 1, 0, 0, 0)
        .single();
    CourseEnrollmentData {
        course: CourseData {
            course_key: format!("course-v1:{org}+{code}+{run}"),
            display_name: title.to_owned(),
            start: starts,
            end: starts.map(|s| s + Duration::days(98)),
        },
        mode: pick(MODES, d >> 16).to_owned(),
        is_active: true,
        creation_date: when,
        created_by: d.is_multiple_of(20).then(|| learner(d % 7)),
        user,
    }
}

fn pick<T: Copy>(items: &[T], draw: u64) -> T {
    items[(draw % items.len() as u64) as usize]
}

/// A fixed 64-bit mixer (SplitMix64's finaliser): spreads consecutive numbers over
/// the whole range.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
