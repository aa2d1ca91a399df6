-- Argo CD health of a tipoff PipelineRun (docs/gitops.md).
-- Progressing until the operator has observed the current generation and while the run is
-- pending or running; Healthy once it succeeded (Ready=True); Degraded on code drift or when it
-- cannot go on without a change (Stalled=True: failed, or blocked by a gate, drift, a dependency
-- check or an invalid spec), naming the phase; Suspended while spec.suspend holds it.
local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the run"
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
-- The phase the run stopped in: the first phase that failed or is blocked, else the current one.
local where = ""
if obj.status.phases ~= nil then
  for _, p in ipairs(obj.status.phases) do
    if p.state == "Failed" or p.state == "Blocked" then
      where = " in phase " .. string.format("%d", p.phase) .. " (" .. p.name .. ")"
      break
    end
  end
end
if where == "" and obj.status.currentPhase ~= nil then
  where = " in phase " .. string.format("%d", obj.status.currentPhase)
end
local drift = conditions["CodeDrift"]
if drift ~= nil and drift.status == "True" then
  hs.status = "Degraded"
  hs.message = state .. where .. ": " .. drift.message
  return hs
end
local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = "Stalled" .. where .. " (" .. stalled.reason .. "): " .. stalled.message
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Succeeded: " .. progress .. " processors succeeded"
  return hs
end
if state == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended" .. where .. ": " .. progress .. " processors succeeded"
  return hs
end
hs.status = "Progressing"
hs.message = state .. where .. ": " .. progress .. " processors succeeded"
return hs
