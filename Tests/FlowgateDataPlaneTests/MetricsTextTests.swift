import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// The data plane's metric families as Prometheus text, with exact samples.
struct MetricsTextTests {
    @Test func prometheusTextHasOneHelpAndTypePerFamilyAndExactSamples() throws {
        var m = MetricsInput()
        var t = FlowTotals()
        t.flowsOpened = 3; t.flowsActive = 1; t.bytesIn = 1000; t.bytesOut = 2000; t.datagramsIn = 7; t.datagramsOut = 5
        m.listeners = [.init(arn: "arn:x/listener/1", transport: .udp, totals: t)]
        m.members = [.init(poolID: "p", memberID: "a", udp: true, weight: 2, totals: t, active: 1, picks: 4,
                           connectFailures: 1, up: false, slowStartFraction: 0.25),
                     .init(poolID: "p", memberID: "b\"q", udp: true, weight: 1, totals: FlowTotals(), active: 0, picks: 0,
                           connectFailures: 0, up: true, slowStartFraction: 1)]
        m.workers = [.init(worker: 0, loopLag: 0.0015, loopLagMax: 0.25)]
        m.udpFlowEvictions = 9
        m.activeTCPConnections = 4
        m.boundPorts = 12
        m.http.requests[PoolMemberKey(poolID: "p", memberID: "a")] = 5
        m.http.responses[HTTPStatusKey(poolID: "p", label: "200")] = 4
        m.http.responses[HTTPStatusKey(poolID: "p", label: "503")] = 1
        m.http.cookies[HTTPStatusKey(poolID: "p", label: "hit")] = 3
        let text = PrometheusText.render(m)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("flowgate_listener_flows_opened_total{listener=\"arn:x/listener/1\",protocol=\"UDP\"} 3"))
        #expect(lines.contains("flowgate_listener_bytes_total{listener=\"arn:x/listener/1\",direction=\"member_to_client\"} 2000"))
        #expect(lines.contains("flowgate_listener_datagrams_total{listener=\"arn:x/listener/1\",direction=\"client_to_member\"} 7"))
        #expect(lines.contains("flowgate_member_up{pool=\"p\",member=\"a\"} 0"))
        #expect(lines.contains("flowgate_member_up{pool=\"p\",member=\"b\\\"q\"} 1"))
        #expect(lines.contains("flowgate_member_slow_start_fraction{pool=\"p\",member=\"a\"} 0.25"))
        #expect(lines.contains("flowgate_pool_members_up{pool=\"p\"} 1"))
        #expect(lines.contains("flowgate_pool_picks_total{pool=\"p\"} 4"))
        #expect(lines.contains("flowgate_worker_loop_lag_seconds{worker=\"0\"} 0.0015"))
        #expect(lines.contains("flowgate_udp_flow_evictions_total 9"))
        #expect(lines.contains("flowgate_active_flows 4"))
        #expect(lines.contains("flowgate_bound_ports 12"))
        #expect(lines.contains("flowgate_http_requests_total{pool=\"p\",member=\"a\"} 5"))
        #expect(lines.contains("flowgate_http_responses_total{pool=\"p\",status=\"200\"} 4"))
        #expect(lines.contains("flowgate_http_responses_total{pool=\"p\",status=\"503\"} 1"))
        #expect(lines.contains("flowgate_http_cookie_requests_total{pool=\"p\",outcome=\"hit\"} 3"))
        // It counts TCP connections only; UDP flows have their own family.
        let activeHelp = try #require(lines.first { $0.hasPrefix("# HELP flowgate_active_flows ") })
        #expect(activeHelp.contains("TCP connections") && !activeHelp.contains("and UDP flows"))
        // Every family: HELP then TYPE, once, before its samples.
        let helps = lines.filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] }
        let types = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(helps == types)
        #expect(Set(helps).count == helps.count)
        #expect(helps.count == 33)
        for line in lines where line.hasPrefix("# TYPE ") && line.hasSuffix(" counter") {
            #expect(line.split(separator: " ")[2].hasSuffix("_total"))
        }
    }
}
