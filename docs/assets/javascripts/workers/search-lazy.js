/*
 * Stand-in for Material's search worker (see site_config/overrides/partials/deferred-requests.html).
 *
 * The page creates this tiny worker on every view; Material's real worker (≈40 kB, with Lunr)
 * is imported only when the first message arrives, which is the search setup sent after the
 * visitor opened the search and the index was downloaded. Its URL comes after the "#".
 * This file must stay in the same folder as Material's worker: the real worker loads the
 * Lunr language files from "../lunr", relative to the worker's own URL, i.e. this file's.
 */
"use strict"

let started = false

addEventListener("message", ev => {
  if (started)
    return
  started = true
  const real = new URL(decodeURIComponent(location.hash.slice(1)), location.href)
  if (real.origin !== location.origin)
    throw new Error(`search-lazy: refusing to load a worker from ${real.origin}`)
  importScripts(real.href)

  // Listeners added while an event is dispatched do not receive it: hand the
  // setup message to the real worker's listener once more.
  dispatchEvent(new MessageEvent("message", { data: ev.data }))
})
