-- The hot customer of hot.lua, paced as mix-paced.lua paces the mix.
dofile("loadtest/hot.lua")
dofile("loadtest/pace.lua")
