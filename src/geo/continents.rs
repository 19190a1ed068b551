//! Country -> continent, for databases (and overrides, and CSV rows) that give a country but no
//! continent. The mapping is GeoNames' `countryInfo.txt`, which MaxMind's GeoIP2 data follows
//! (e.g. TR and CY as MaxMind has them: AS and EU; RU in EU; the Caribbean in NA).

use super::code::Code;

/// The continent of an ISO 3166 country code (plus XK Kosovo, and the withdrawn CS and AN
/// that old data still carries); `None` for codes not in the table.
pub fn continent_of(country: Code) -> Option<Code> {
    const AF: Code = Code::lit(b"AF");
    const AN: Code = Code::lit(b"AN");
    const AS: Code = Code::lit(b"AS");
    const EU: Code = Code::lit(b"EU");
    const NA: Code = Code::lit(b"NA");
    const OC: Code = Code::lit(b"OC");
    const SA: Code = Code::lit(b"SA");
    // A code listed twice is an `unreachable_patterns` warning, which CI's `-D warnings` fails.
    let continent = match country.as_str().as_bytes() {
        // Africa
        b"AO" | b"BF" | b"BI" | b"BJ" | b"BW" | b"CD" | b"CF" | b"CG" | b"CI" | b"CM" | b"CV"
        | b"DJ" | b"DZ" | b"EG" | b"EH" | b"ER" | b"ET" | b"GA" | b"GH" | b"GM" | b"GN" | b"GQ"
        | b"GW" | b"KE" | b"KM" | b"LR" | b"LS" | b"LY" | b"MA" | b"MG" | b"ML" | b"MR" | b"MU"
        | b"MW" | b"MZ" | b"NA" | b"NE" | b"NG" | b"RE" | b"RW" | b"SC" | b"SD" | b"SH" | b"SL"
        | b"SN" | b"SO" | b"SS" | b"ST" | b"SZ" | b"TD" | b"TG" | b"TN" | b"TZ" | b"UG" | b"YT"
        | b"ZA" | b"ZM" | b"ZW" => AF,
        // Antarctica
        b"AQ" | b"BV" | b"GS" | b"HM" | b"TF" => AN,
        // Asia
        b"AE" | b"AF" | b"AM" | b"AZ" | b"BD" | b"BH" | b"BN" | b"BT" | b"CC" | b"CN" | b"GE"
        | b"HK" | b"ID" | b"IL" | b"IN" | b"IO" | b"IQ" | b"IR" | b"JO" | b"JP" | b"KG" | b"KH"
        | b"KP" | b"KR" | b"KW" | b"KZ" | b"LA" | b"LB" | b"LK" | b"MM" | b"MN" | b"MO" | b"MV"
        | b"MY" | b"NP" | b"OM" | b"PH" | b"PK" | b"PS" | b"QA" | b"SA" | b"SG" | b"SY" | b"TH"
        | b"TJ" | b"TM" | b"TR" | b"TW" | b"UZ" | b"VN" | b"YE" => AS,
        // Europe
        b"AD" | b"AL" | b"AT" | b"AX" | b"BA" | b"BE" | b"BG" | b"BY" | b"CH" | b"CS" | b"CY"
        | b"CZ" | b"DE" | b"DK" | b"EE" | b"ES" | b"FI" | b"FO" | b"FR" | b"GB" | b"GG" | b"GI"
        | b"GR" | b"HR" | b"HU" | b"IE" | b"IM" | b"IS" | b"IT" | b"JE" | b"LI" | b"LT" | b"LU"
        | b"LV" | b"MC" | b"MD" | b"ME" | b"MK" | b"MT" | b"NL" | b"NO" | b"PL" | b"PT" | b"RO"
        | b"RS" | b"RU" | b"SE" | b"SI" | b"SJ" | b"SK" | b"SM" | b"UA" | b"VA" | b"XK" => EU,
        // North America, with Central America and the Caribbean
        b"AG" | b"AI" | b"AN" | b"AW" | b"BB" | b"BL" | b"BM" | b"BQ" | b"BS" | b"BZ" | b"CA"
        | b"CR" | b"CU" | b"CW" | b"DM" | b"DO" | b"GD" | b"GL" | b"GP" | b"GT" | b"HN" | b"HT"
        | b"JM" | b"KN" | b"KY" | b"LC" | b"MF" | b"MQ" | b"MS" | b"MX" | b"NI" | b"PA" | b"PM"
        | b"PR" | b"SV" | b"SX" | b"TC" | b"TT" | b"US" | b"VC" | b"VG" | b"VI" => NA,
        // Oceania
        b"AS" | b"AU" | b"CK" | b"CX" | b"FJ" | b"FM" | b"GU" | b"KI" | b"MH" | b"MP" | b"NC"
        | b"NF" | b"NR" | b"NU" | b"NZ" | b"PF" | b"PG" | b"PN" | b"PW" | b"SB" | b"TK" | b"TL"
        | b"TO" | b"TV" | b"UM" | b"VU" | b"WF" | b"WS" => OC,
        // South America
        b"AR" | b"BO" | b"BR" | b"CL" | b"CO" | b"EC" | b"FK" | b"GF" | b"GY" | b"PE" | b"PY"
        | b"SR" | b"UY" | b"VE" => SA,
        _ => return None,
    };
    Some(continent)
}
