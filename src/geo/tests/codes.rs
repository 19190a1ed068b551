//! `Code` parsing and the country -> continent table.

use crate::geo::{CONTINENTS, Code, continent_of};

fn code(text: &str) -> Code {
    text.parse().expect("test code")
}

#[test]
fn codes_parse_case_insensitively_and_reject_everything_else() {
    let us: Code = "us".parse().expect("lowercase accepted");
    assert_eq!(us, code("US"));
    assert_eq!(us.to_string(), "US");
    assert_eq!(us.as_str(), "US");
    assert_eq!(format!("{us:?}"), "Code(\"US\")");
    for bad in ["", "U", "USA", "U1", "é", " US", "U-"] {
        assert!(bad.parse::<Code>().is_err(), "{bad:?} accepted");
    }
    let err = "XYZ".parse::<Code>().expect_err("three letters");
    assert_eq!(err.to_string(), "\"XYZ\" is not a two-letter code");
    assert!(code("EU").is_continent() && !code("US").is_continent());
}

#[test]
fn continent_table_covers_every_country_code() {
    let letters = b'A'..=b'Z';
    let known: Vec<(Code, Code)> = letters
        .clone()
        .flat_map(|a| letters.clone().map(move |b| [a, b]))
        .filter_map(|pair| Code::parse(std::str::from_utf8(&pair).ok()?))
        .filter_map(|c| continent_of(c).map(|continent| (c, continent)))
        .collect();
    // ISO 3166-1's 249 codes, XK (Kosovo), and the withdrawn CS and AN.
    assert_eq!(known.len(), 252);
    assert!(known.iter().all(|(_, c)| CONTINENTS.contains(c)));
    let expect = [
        ("JP", "AS"),
        ("US", "NA"),
        ("BR", "SA"),
        ("AU", "OC"),
        ("AQ", "AN"),
        ("ZA", "AF"),
        ("DE", "EU"),
        ("RU", "EU"),
        ("TR", "AS"),
        ("CY", "EU"),
        ("EG", "AF"),
        ("PA", "NA"),
        ("XK", "EU"),
        ("GF", "SA"),
        ("GL", "NA"),
        ("TL", "OC"),
    ];
    for (country, continent) in expect {
        assert_eq!(
            continent_of(code(country)),
            Some(code(continent)),
            "{country}"
        );
    }
    assert_eq!(continent_of(code("ZZ")), None);
}
