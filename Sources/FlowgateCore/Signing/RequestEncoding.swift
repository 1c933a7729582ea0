// Encodings both request signers share (AWS SigV4, Huawei SDK-HMAC-SHA256):
// RFC 3986 percent-encoding and the basic ISO 8601 timestamp. Used by the
// control server to verify signatures and by flowgatectl to make them.

/// RFC 3986 percent-encoding as both signers use it.
public enum URLCoding {
    /// Encodes every byte except the unreserved set `A-Z a-z 0-9 - _ . ~` and `extraSafe`.
    public static func encode(_ text: String, extraSafe: String = "") -> String {
        let safe = Set(extraSafe.utf8)
        var out = ""
        for b in text.utf8 {
            switch b {
            case 65...90, 97...122, 48...57, 45, 95, 46, 126: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                if safe.contains(b) { out.unicodeScalars.append(Unicode.Scalar(b)) } else {
                    let hex = Array("0123456789ABCDEF")
                    out.append("%"); out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
                }
            }
        }
        return out
    }

    public static func decode(_ text: String, plusIsSpace: Bool) -> String {
        let u = Array(text.utf8)
        var out = [UInt8](); out.reserveCapacity(u.count)
        var i = 0
        while i < u.count {
            if u[i] == 37, i + 2 < u.count, let v = Hex.decode(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self)) {
                out.append(v[0]); i += 3
            } else if plusIsSpace, u[i] == 43 {
                out.append(32); i += 1
            } else {
                out.append(u[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// `yyyyMMdd'T'HHmmss'Z'` (both signers' date form) to seconds since 1970.
public enum BasicISODate {
    public static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count == 16, u[8] == 84, u[15] == 90 else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r { guard u[i] >= 48, u[i] <= 57 else { return nil }; v = v * 10 + Int64(u[i] - 48) }
            return v
        }
        guard let y = num(0..<4), let mo = num(4..<6), let d = num(6..<8), let h = num(9..<11), let mi = num(11..<13), let s = num(13..<15),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
    }

    public static func format(_ epoch: Int64) -> String {
        let days = epoch >= 0 ? epoch / 86400 : (epoch - 86399) / 86400
        let secs = epoch - days * 86400
        let (y, m, d) = civilFromDays(days)
        func p(_ v: Int64, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return p(y, 4) + p(m, 2) + p(d, 2) + "T" + p(secs / 3600, 2) + p(secs / 60 % 60, 2) + p(secs % 60, 2) + "Z"
    }

    // Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
    static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
