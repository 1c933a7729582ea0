// flowgated: placeholder entry point until the foundation wiring lands.
import FlowgateCore
print("flowgated")
