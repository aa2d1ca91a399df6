-- Argo CD health of a tipoff PhaseCompletion (docs/gitops.md).
-- Progressing until the operator has written a status computed from the current generation
-- (the Ready condition's observedGeneration; the spec is immutable) and while the phase is
-- pending or running; Healthy once it succeeded; Degraded when it failed or is blocked
-- (Stalled=True), naming the phase.
local hs = {}
local phase = "phase " .. string.format("%d", obj.spec.phase) .. " (" .. obj.spec.phaseName .. ")"
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe " .. phase
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local ready = conditions["Ready"]
local generation = obj.metadata.generation
if ready == nil or (generation ~= nil and (ready.observedGeneration == nil or ready.observedGeneration < generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe " .. phase
  return hs
end
local state = obj.status.state or "Pending"
local progress = obj.status.progress or "0/0"
local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = phase .. " Succeeded: " .. progress .. " processors succeeded"
  return hs
end
hs.status = "Progressing"
hs.message = phase .. " " .. state .. ": " .. progress .. " processors succeeded"
return hs
