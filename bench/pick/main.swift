// Pick-path micro-benchmark (issue 4/7): placeholder until the selection work lands.
import FlowgateCore
print("pick bench")
