-- wrk script: a reader browsing the centre. Each request picks, in turn,
-- the study list, a study's detail, or a thumbnail, from the paths given
-- in PATHS (one per line), with the session token in TOKEN.
local paths = {}
local token = os.getenv("TOKEN")
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
-- Non-2xx answers are counted by wrk ("Non-2xx or 3xx responses").
