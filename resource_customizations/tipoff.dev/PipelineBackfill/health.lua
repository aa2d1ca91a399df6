-- Argo CD health of a tipoff PipelineBackfill (docs/gitops.md).
-- Progressing until the operator has observed the current generation and while dates are left;
-- Healthy once every targeted date's run succeeded (Ready=True); Suspended while spec.suspend
-- holds it; Degraded when only a change can move it (Stalled=True: an invalid range, or every
-- date ended and some failed).
local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the backfill"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local state = obj.status.state or "Pending"
local progress = obj.status.progress or "0/0"
local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Succeeded: " .. progress .. " dates ended"
  return hs
end
if state == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended: " .. progress .. " dates ended"
  return hs
end
hs.status = "Progressing"
hs.message = state .. ": " .. progress .. " dates ended"
return hs
