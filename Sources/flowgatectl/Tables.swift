// Human-readable tables: left-aligned columns, a header row.
import FlowgateCore

enum Tables {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, c) in cells.enumerated() {
                out += i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2)
            }
            return out + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    static func text(_ v: JSONValue?) -> String {
        guard let v else { return "-" }
        switch v {
        case .null: return "-"
        case let .string(s): return s.isEmpty ? "-" : s
        case let .int(i): return String(i)
        case let .bool(b): return b ? "true" : "false"
        default: return v.serialized()
        }
    }

    static func listeners(_ items: [JSONValue]) -> String {
        render(["LISTENER", "PROTOCOL", "PORTS", "AFFINITY"], items.map { l in
            let ports = (l["PortRanges"]?.arrayValue ?? []).map { r -> String in
                let f = text(r["FromPort"]), t = text(r["ToPort"])
                return f == t ? f : "\(f)-\(t)"
            }.joined(separator: ",")
            return [text(l["ListenerArn"]), text(l["Protocol"]), ports, text(l["ClientAffinity"])]
        })
    }

    static func pools(_ items: [JSONValue]) -> String {
        render(["ID", "NAME", "PROTOCOL", "ALGORITHM", "PERSISTENCE", "SLOW START", "MEMBERS"], items.map { p in
            var persistence = "none"
            if let s = p["session_persistence"], !s.isNull {
                persistence = text(s["type"])
                if let c = s["cookie_name"], !c.isNull { persistence += ":\(text(c))" }
                persistence += ":\(text(s["persistence_timeout"]))m"
            }
            let slow = p["slow_start"]?["enable"]?.boolValue == true ? "\(text(p["slow_start"]?["duration"]))s" : "off"
            return [text(p["id"]), text(p["name"]), text(p["protocol"]), text(p["lb_algorithm"]), persistence, slow,
                    String(p["members"]?.arrayValue?.count ?? 0)]
        })
    }

    static func members(_ items: [JSONValue]) -> String {
        render(["ID", "ADDRESS", "PORT", "WEIGHT", "ADMIN", "STATUS", "NAME"], items.map { m in
            [text(m["id"]), text(m["address"]), text(m["protocol_port"]), text(m["weight"]), text(m["admin_state_up"]),
             text(m["operating_status"]), text(m["name"])]
        })
    }
}
