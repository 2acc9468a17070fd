/* yiqian applicant pages script: progressive behaviour for the server-rendered
   HTML (forms, SMS codes, ID-card photos, liveness video, signature, address
   pickers, payment, conditional fields). Served as /static/app.js. Plain
   ES2019, one IIFE, no deps.

   DATA-ATTRIBUTE CONTRACT (server HTML <-> this script)
   -----------------------------------------------------
   Every request is same-origin with cookies. Errors are HTTP 4xx/5xx with JSON
   {"error":{"code":"snake_case","message":"中文说明"}}; error.message is shown in
   the nearest .form-error (one is created after the control if none is found).
   Buttons are disabled while a request is in flight, re-enabled on error.

   1. form[data-api-form]  data-action (URL; falls back to the action attribute),
        data-method (default POST), data-next (URL, optional), data-then (URL,
        optional). Submits JSON of the named fields: checkbox -> true/false,
        radio -> value of the checked one ("" if none), others -> trimmed string;
        disabled fields and file inputs are skipped. On 2xx: go to resp.next_url,
        else data-next, else reload. With data-then: after the first 2xx, POST
        data-then-body (JSON, default {}) to data-then and navigate by that
        second answer; with data-then-else, a failed second request goes there.
        data-auto-submit: submitted as soon as the page loads.
   2. button[data-sms-send]  data-action (URL), data-phone-input (CSS selector).
        POSTs {"phone": value}; countdown "N秒后重新获取" for
        resp.retry_after_seconds (default 60), then "重新获取验证码". An error
        carrying error.retry_after_seconds also starts the countdown.
   3. section[data-idcard]  data-photos-action (URL). Contains
        input[type=file][data-photo=front|back] inside label.photo-slot with
        img.preview (+ placeholder span), button[data-photos-upload],
        button[data-photos-retake], .progress (progress + .progress-text),
        .form-error. Photos are downscaled to <=1600px JPEG q0.85 and posted as
        multipart fields front (front.jpg) and back (back.jpg). Answer
        {"ocr":{name,sex,ethnicity,birth_date,address,id_number,authority,
        validity}} fills form[data-idcard-fields] (by name; nulls skipped), which
        is then un-hidden (class "hidden") and scrolled to.
   4. section[data-liveness]  data-challenge-action, data-video-action.
        Contains button[data-liveness-start], .digits, .video-box > video,
        button[data-liveness-record] (may be rendered hidden: shown once the
        camera is open), [data-liveness-fallback] (hidden; holds
        input[type=file][accept="video/*"] and button[data-liveness-fallback-upload]),
        .progress, .form-error. Challenge answer {challenge_id, digits,
        expires_in_seconds}. Video upload: multipart challenge_id + video
        (liveness.mp4 | liveness.webm). On 2xx go to resp.next_url.
   5. section[data-signature]  data-action. Contains .signature-pad > canvas,
        button[data-signature-clear], button[data-signature-submit], .form-error,
        optional .progress. Multipart: image (signature.png), strokes (JSON
        [[{x,y,t}...]...], CSS px, t = ms since the first point), width, height
        (CSS px of the pad). On 2xx go to resp.next_url.
   6. form[data-address]  select[name=province_code|city_code|district_code],
        each with a first empty option. Filled from the region tree the form's data-regions names
        ([{c,n,s:[{c,n,s:[{c,n}]}]}]). A level without children gets a single
        option "(无)" carrying the parent's code. Optional data-value="<code>"
        (or a pre-rendered selected option) on each select preselects it.
        Usually also data-api-form.
   7. button[data-post]  data-action, optional data-confirm (confirm() text),
        optional data-body (JSON, default {}). On 2xx: resp.next_url or reload.
   8. [data-poll]  data-url (GET JSON), data-until (comma-separated states).
        Every 1.5 s; when resp.state is listed: resp.next_url or reload. After
        2 minutes shows "支付结果确认中,请稍后在订单详情查看" in the element.
   9. form[data-pay]  data-action (URL; falls back to action attribute), radios
        name=channel (wechat|alipay). POSTs {"channel": value}; the answer's kind:
        redirect {pay_url} -> location.href = pay_url; authorize {authorize_url}
        -> location.href (WeChat authorisation first, then pay again);
        wechat_jsapi {params, return_url} -> WeixinJSBridge getBrandWCPayRequest,
        then return_url whatever the result (the server learns the real outcome
        from the gateway); else resp.next_url / reload.
  10. [data-show-if="NAME=VALUE"]  inside a form: shown only while the form's
        field NAME (a radio group or a select) has VALUE, hidden otherwise;
        while hidden, the inputs/selects/textareas inside are disabled, so they
        are neither validated nor submitted (the server checks regardless).
        Re-evaluated on every change in the form. Used by 申请开票 (纳税人识别号
        only for 单位).
  11. section[data-network-check]  data-probe-url (GET: round trip; POST: 256 KiB
        of random bytes, answer {received_bytes}). Contains li[data-check=
        server|upload|camera|light|battery] (each with .check-state and
        .check-detail; the script sets data-state idle|running|ok|warn|fail|skip),
        .check-summary and button[data-network-check-run]. Rendered hidden; shown
        by the script. Server, upload and battery run on load; the button runs
        all of them with the camera and light (getUserMedia after the tap). The
        battery row stays hidden unless navigator.getBattery answers.
   Class "hidden" (display:none) is the show/hide switch used everywhere. */
(function () {
  'use strict';

  var NETWORK_ERROR = '网络异常,请稍后重试';
  var TOO_LARGE_ERROR = '文件过大,请重新拍摄后再试';

  // ---------------------------------------------------------------------
  // Small DOM helpers
  // ---------------------------------------------------------------------

  function qs(sel, root) {
    return (root || document).querySelector(sel);
  }

  function qsa(sel, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(sel));
  }

  function show(el) {
    if (!el) return;
    el.classList.remove('hidden');
    el.hidden = false;
  }

  function hide(el) {
    if (el) el.classList.add('hidden');
  }

  function each(list, fn) {
    for (var i = 0; i < list.length; i++) {
      try {
        fn(list[i]);
      } catch (e) {
        // One broken widget must not take the rest of the page down.
        if (window.console) console.error('yiqian:', e);
      }
    }
  }

  // ---------------------------------------------------------------------
  // Error display
  // ---------------------------------------------------------------------

  // The nearest .form-error for `el`: walk up the ancestors and take the first
  // .form-error found that does not belong to some other form.
  function findErrorBox(el) {
    for (var node = el; node && node.nodeType === 1; node = node.parentElement) {
      if (node.classList.contains('form-error')) return node;
      var candidates = node.querySelectorAll('.form-error');
      for (var i = 0; i < candidates.length; i++) {
        var f = candidates[i].closest('form');
        if (!f || f.contains(el)) return candidates[i];
      }
      if (node === document.body) break;
    }
    return null;
  }

  function errorBoxFor(el) {
    var box = findErrorBox(el);
    if (box) return box;
    // None rendered: create one right after the control.
    box = document.createElement('p');
    box.className = 'form-error';
    if (el.parentNode) el.parentNode.insertBefore(box, el.nextSibling);
    return box;
  }

  // An error that names its input (error.field) is shown beside that input, which is marked
  // and focused; any other error goes to the form's .form-error near `el`.
  function showError(el, message, err) {
    var field = fieldFor(el, err);
    if (field) {
      showFieldError(field, message);
      return;
    }
    var box = errorBoxFor(el);
    box.setAttribute('role', 'alert');
    box.textContent = message || NETWORK_ERROR;
    show(box);
    try {
      box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } catch (e) {
      /* old browsers: ignore */
    }
  }

  function clearError(el) {
    var box = findErrorBox(el);
    if (box) box.textContent = '';
    var scope = el && el.closest ? el.closest('form, section, .card') : null;
    if (scope) qsa('[aria-invalid=true]', scope).forEach(clearFieldError);
  }

  // The input named by the error's `field` in the form or section around `el`: a named control,
  // or the ID card photo of that side (front/back).
  function fieldFor(el, err) {
    var name = err && err.detail && err.detail.field;
    var scope = el && el.closest ? el.closest('form, section, .card') : null;
    if (!name || !scope || !/^[a-z_]+$/.test(name)) return null;
    return qs('[name="' + name + '"]', scope) || qs('[data-photo="' + name + '"]', scope);
  }

  function fieldHolder(field) {
    return field.closest('.field, .photo-slot') || field;
  }

  function showFieldError(field, message) {
    var holder = fieldHolder(field);
    var box = holder.__yqFieldError;
    if (!box) {
      box = document.createElement('p');
      box.className = 'field-error';
      box.setAttribute('role', 'alert');
      box.id = 'error-' + (field.name || field.getAttribute('data-photo') || 'field');
      // Inside a .field, under its input; after a photo slot (a label), beside it.
      if (holder.classList.contains('field')) holder.appendChild(box);
      else holder.parentNode.insertBefore(box, holder.nextSibling);
      holder.__yqFieldError = box;
      var clear = function () {
        clearFieldError(field);
      };
      field.addEventListener('input', clear);
      field.addEventListener('change', clear);
    }
    box.textContent = message || NETWORK_ERROR;
    show(box);
    field.setAttribute('aria-invalid', 'true');
    field.setAttribute('aria-describedby', box.id);
    holder.classList.add('invalid');
    try {
      holder.scrollIntoView({ block: 'center', behavior: 'smooth' });
    } catch (e) {
      holder.scrollIntoView();
    }
    // A file input is hidden inside its slot: the slot is shown, there is nothing to type in.
    if ((field.type || '').toLowerCase() !== 'file') {
      try {
        field.focus({ preventScroll: true });
      } catch (e) {
        field.focus();
      }
    }
  }

  function clearFieldError(field) {
    var holder = fieldHolder(field);
    field.removeAttribute('aria-invalid');
    field.removeAttribute('aria-describedby');
    holder.classList.remove('invalid');
    if (holder.__yqFieldError) {
      holder.__yqFieldError.textContent = '';
      hide(holder.__yqFieldError);
    }
  }

  function errorMessage(err) {
    return (err && err.userMessage) || NETWORK_ERROR;
  }

  // ---------------------------------------------------------------------
  // Busy state (double-click guard)
  // ---------------------------------------------------------------------

  var busyButtons = [];

  function setBusy(btn, busy) {
    if (!btn) return;
    if (busy) {
      btn.disabled = true;
      btn.setAttribute('aria-busy', 'true');
      if (busyButtons.indexOf(btn) < 0) busyButtons.push(btn);
    } else {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      var i = busyButtons.indexOf(btn);
      if (i >= 0) busyButtons.splice(i, 1);
    }
  }

  // Coming back via the back button may restore a page from the bfcache with
  // buttons still disabled from before the navigation: release them.
  window.addEventListener('pageshow', function (ev) {
    if (!ev.persisted) return;
    busyButtons.slice().forEach(function (b) {
      setBusy(b, false);
    });
    qsa('form').forEach(function (f) {
      f.__yqBusy = false;
    });
  });

  // ---------------------------------------------------------------------
  // Networking
  // ---------------------------------------------------------------------

  function ApiError(message, code, status, detail) {
    this.name = 'ApiError';
    this.userMessage = message;
    this.message = message;
    this.code = code;
    this.status = status;
    this.detail = detail || null;
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  // Turn a status + body text into a result object or an ApiError.
  function parseAnswer(status, text) {
    var data;
    var isJson = false;
    if (text) {
      try {
        data = JSON.parse(text);
        isJson = true;
      } catch (e) {
        data = undefined;
      }
    }
    if (status >= 200 && status < 300) {
      // Empty or non-JSON success: treat as "no instructions" (callers reload).
      return isJson && data && typeof data === 'object' ? data : {};
    }
    var err = isJson && data && typeof data === 'object' ? data.error : null;
    if (err && typeof err === 'object' && err.message) {
      throw new ApiError(String(err.message), err.code || 'http_' + status, status, err);
    }
    if (status === 413) throw new ApiError(TOO_LARGE_ERROR, 'payload_too_large', status);
    throw new ApiError(NETWORK_ERROR, status ? 'http_' + status : 'network', status);
  }

  // XHR transport; used for uploads (progress) and where fetch is missing.
  // `timeoutMs` defaults to five minutes (a face video on a slow line); a timeout rejects with
  // the code 'timeout'.
  function xhrRequest(method, url, body, contentType, onProgress, timeoutMs) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      try {
        xhr.open(method, url, true);
      } catch (e) {
        reject(new ApiError(NETWORK_ERROR, 'network', 0));
        return;
      }
      xhr.setRequestHeader('Accept', 'application/json');
      if (contentType) xhr.setRequestHeader('Content-Type', contentType);
      xhr.timeout = timeoutMs || 5 * 60 * 1000;
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) {
          if (e.lengthComputable && e.total > 0) {
            onProgress(Math.min(100, Math.round((e.loaded * 100) / e.total)));
          }
        };
        xhr.upload.onload = function () {
          onProgress(100);
        };
      }
      xhr.onload = function () {
        try {
          resolve(parseAnswer(xhr.status, xhr.responseText));
        } catch (e) {
          reject(e);
        }
      };
      xhr.onerror = xhr.onabort = function () {
        reject(new ApiError(NETWORK_ERROR, 'network', 0));
      };
      xhr.ontimeout = function () {
        reject(new ApiError(NETWORK_ERROR, 'timeout', 0));
      };
      xhr.send(body === undefined ? null : body);
    });
  }

  // JSON request. `body` undefined means no body (GET).
  function requestJSON(method, url, body) {
    method = (method || 'POST').toUpperCase();
    var payload = body === undefined ? undefined : JSON.stringify(body);
    if (typeof window.fetch !== 'function') {
      return xhrRequest(method, url, payload, payload === undefined ? null : 'application/json');
    }
    var headers = { Accept: 'application/json' };
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    var status = 0;
    return window
      .fetch(url, {
        method: method,
        credentials: 'same-origin',
        cache: 'no-store',
        headers: headers,
        body: payload
      })
      .then(function (res) {
        status = res.status;
        return res.text();
      })
      .then(
        function (text) {
          return parseAnswer(status, text);
        },
        function () {
          throw new ApiError(NETWORK_ERROR, 'network', 0);
        }
      );
  }

  function uploadMultipart(url, formData, onProgress) {
    // No Content-Type header: the browser sets the multipart boundary.
    return xhrRequest('POST', url, formData, null, onProgress);
  }

  function go(url) {
    window.location.href = url;
  }

  // Navigate by an answer: resp.next_url, else the fallback URL, else reload.
  function navigate(resp, fallback) {
    if (resp && typeof resp.next_url === 'string' && resp.next_url) {
      go(resp.next_url);
    } else if (fallback) {
      go(fallback);
    } else {
      window.location.reload();
    }
  }

  // Controller for a .progress wrapper (<progress> + .progress-text).
  function progressUI(root) {
    var wrap = root ? qs('.progress', root) : null;
    var bar = wrap ? qs('progress', wrap) : null;
    var text = wrap ? qs('.progress-text', wrap) : null;
    if (bar) bar.max = 100;
    return {
      set: function (pct, label) {
        if (!wrap) return;
        show(wrap);
        if (bar) bar.value = pct;
        if (text) text.textContent = label || '上传中 ' + pct + '%';
      },
      text: function (label) {
        if (text) text.textContent = label;
      },
      hide: function () {
        if (!wrap) return;
        hide(wrap);
        if (bar) bar.value = 0;
        if (text) text.textContent = '';
      }
    };
  }

  function uploadWithProgress(url, fd, prog) {
    prog.set(0);
    return uploadMultipart(url, fd, function (pct) {
      if (pct >= 100) prog.set(100, '处理中…');
      else prog.set(pct);
    });
  }

  // ---------------------------------------------------------------------
  // 1. JSON forms
  // ---------------------------------------------------------------------

  function collectForm(form) {
    var data = {};
    var radioSeen = {};
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.name || el.disabled) continue;
      var tag = el.tagName;
      var type = (el.type || '').toLowerCase();
      if (tag === 'BUTTON' || tag === 'FIELDSET' || tag === 'OBJECT' || tag === 'OUTPUT') continue;
      if (type === 'submit' || type === 'button' || type === 'reset' || type === 'image' || type === 'file') {
        continue;
      }
      if (type === 'checkbox') {
        data[el.name] = !!el.checked;
      } else if (type === 'radio') {
        if (el.checked) {
          data[el.name] = String(el.value).trim();
          radioSeen[el.name] = true;
        } else if (!radioSeen[el.name]) {
          data[el.name] = '';
        }
      } else {
        data[el.name] = String(el.value == null ? '' : el.value).trim();
      }
    }
    return data;
  }

  function submitterOf(form, ev) {
    return (
      (ev && ev.submitter) ||
      qs('button[type=submit], input[type=submit], button:not([type])', form)
    );
  }

  function initApiForm(form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (form.__yqBusy) return;
      var btn = submitterOf(form, ev);
      var action = form.getAttribute('data-action') || form.getAttribute('action') || window.location.href;
      var method = form.getAttribute('data-method') || 'POST';
      var then = form.getAttribute('data-then');
      var thenBody = form.getAttribute('data-then-body');
      var thenElse = form.getAttribute('data-then-else');
      var next = form.getAttribute('data-next');
      clearError(btn || form);
      form.__yqBusy = true;
      setBusy(btn, true);
      requestJSON(method, action, collectForm(form))
        .then(function (resp) {
          if (!then) return resp;
          var second = requestJSON('POST', then, thenBody ? JSON.parse(thenBody) : {});
          // Where the first request already changed what the page stands on (a login), a
          // failed second step continues at data-then-else instead of showing its error here.
          if (!thenElse) return second;
          return second.then(null, function () {
            go(thenElse);
            return new Promise(function () {});
          });
        })
        .then(function (resp) {
          navigate(resp, next);
        })
        .catch(function (err) {
          form.__yqBusy = false;
          setBusy(btn, false);
          showError(btn || form, errorMessage(err), err);
        });
    });
    // data-auto-submit: the page was reached to do this at once (its inputs already filled in).
    if (form.hasAttribute('data-auto-submit')) {
      if (typeof form.requestSubmit === 'function') form.requestSubmit();
      else form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  }

  // ---------------------------------------------------------------------
  // 2. SMS code button
  // ---------------------------------------------------------------------

  function startCountdown(btn, seconds) {
    if (btn.__yqTimer) clearInterval(btn.__yqTimer);
    var end = Date.now() + Math.max(1, Math.round(seconds)) * 1000;
    btn.removeAttribute('aria-busy');
    btn.disabled = true;
    var tick = function () {
      var left = Math.ceil((end - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(btn.__yqTimer);
        btn.__yqTimer = null;
        btn.__yqCounting = false;
        btn.disabled = false;
        btn.textContent = '重新获取验证码';
        return;
      }
      btn.textContent = left + '秒后重新获取';
    };
    btn.__yqCounting = true;
    tick();
    btn.__yqTimer = setInterval(tick, 1000);
  }

  function initSmsButton(btn) {
    btn.addEventListener('click', function (ev) {
      ev.preventDefault(); // never submit the enclosing form
      if (btn.disabled || btn.__yqCounting || btn.getAttribute('aria-busy') === 'true') return;
      var sel = btn.getAttribute('data-phone-input');
      var input = null;
      try {
        input = sel ? qs(sel) : null;
      } catch (e) {
        input = null;
      }
      if (!input && btn.form) input = qs('input[name=phone], input[type=tel]', btn.form);
      var phone = input ? String(input.value).replace(/\s+/g, '') : '';
      clearError(btn);
      if (!phone) {
        if (input) showFieldError(input, '请输入手机号');
        else showError(btn, '请输入手机号');
        return;
      }
      setBusy(btn, true);
      requestJSON('POST', btn.getAttribute('data-action'), { phone: phone })
        .then(function (resp) {
          setBusy(btn, false);
          var secs = Number(resp && resp.retry_after_seconds);
          startCountdown(btn, secs > 0 ? secs : 60);
          // Move the cursor to the code field if there is an obvious one.
          var form = btn.form || btn.closest('form');
          var codeInput = form && qs('input[name=code], input[autocomplete="one-time-code"]', form);
          if (codeInput) codeInput.focus();
        })
        .catch(function (err) {
          setBusy(btn, false);
          showError(btn, errorMessage(err), err);
          var retry = err && err.detail ? Number(err.detail.retry_after_seconds) : 0;
          if (retry > 0) startCountdown(btn, retry);
        });
    });
  }

  // ---------------------------------------------------------------------
  // 3. ID-card photos
  // ---------------------------------------------------------------------

  function loadImage(url) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        resolve(img);
      };
      img.onerror = function () {
        reject(new Error('image decode failed'));
      };
      img.src = url;
    });
  }

  function canvasToBlob(canvas, type, quality) {
    return new Promise(function (resolve, reject) {
      if (canvas.toBlob) {
        canvas.toBlob(
          function (blob) {
            if (blob) resolve(blob);
            else reject(new Error('toBlob failed'));
          },
          type,
          quality
        );
        return;
      }
      try {
        var dataUrl = canvas.toDataURL(type, quality);
        var parts = dataUrl.split(',');
        var bin = atob(parts[1]);
        var bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        resolve(new Blob([bytes], { type: type }));
      } catch (e) {
        reject(e);
      }
    });
  }

  // Decode an image file (EXIF orientation applied), scale the longer side to
  // at most maxSide and re-encode as JPEG.
  function downscaleImage(file, maxSide, quality) {
    var decode;
    if (typeof window.createImageBitmap === 'function') {
      decode = window
        .createImageBitmap(file, { imageOrientation: 'from-image' })
        .then(function (bmp) {
          return { src: bmp, w: bmp.width, h: bmp.height, done: function () { if (bmp.close) bmp.close(); } };
        })
        .catch(function () {
          return null;
        });
    } else {
      decode = Promise.resolve(null);
    }
    return decode
      .then(function (decoded) {
        if (decoded) return decoded;
        var url = URL.createObjectURL(file);
        return loadImage(url).then(
          function (img) {
            return {
              src: img,
              w: img.naturalWidth || img.width,
              h: img.naturalHeight || img.height,
              done: function () { URL.revokeObjectURL(url); }
            };
          },
          function (e) {
            URL.revokeObjectURL(url);
            throw e;
          }
        );
      })
      .then(function (d) {
        if (!d.w || !d.h) {
          d.done();
          throw new Error('empty image');
        }
        var scale = Math.min(1, maxSide / Math.max(d.w, d.h));
        var cw = Math.max(1, Math.round(d.w * scale));
        var ch = Math.max(1, Math.round(d.h * scale));
        var canvas = document.createElement('canvas');
        canvas.width = cw;
        canvas.height = ch;
        var ctx = canvas.getContext('2d');
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, cw, ch);
        ctx.imageSmoothingEnabled = true;
        if ('imageSmoothingQuality' in ctx) ctx.imageSmoothingQuality = 'high';
        ctx.drawImage(d.src, 0, 0, cw, ch);
        d.done();
        return canvasToBlob(canvas, 'image/jpeg', quality);
      });
  }

  function initIdcard(section) {
    var action = section.getAttribute('data-photos-action');
    var uploadBtn = qs('[data-photos-upload]', section);
    var retakeBtn = qs('[data-photos-retake]', section);
    var fieldsForm = qs('form[data-idcard-fields]', section) || qs('form[data-idcard-fields]');
    var prog = progressUI(section);
    var slots = {};
    var blobs = { front: null, back: null };
    var uploading = false;

    function errorAnchor() {
      return uploadBtn || section;
    }

    function refresh() {
      if (uploadBtn && !uploading) uploadBtn.disabled = !(blobs.front && blobs.back);
      // 重拍 only once there is a photo to take again.
      if (retakeBtn) {
        if (blobs.front || blobs.back) show(retakeBtn);
        else hide(retakeBtn);
      }
    }

    function setPreview(side, blob) {
      var s = slots[side];
      if (!s) return;
      if (s.url) {
        URL.revokeObjectURL(s.url);
        s.url = null;
      }
      if (blob) {
        s.url = URL.createObjectURL(blob);
        if (s.img) {
          s.img.src = s.url;
          show(s.img);
        }
        if (s.slot) s.slot.classList.add('has-photo');
      } else {
        if (s.img) {
          s.img.removeAttribute('src');
          hide(s.img);
        }
        if (s.slot) s.slot.classList.remove('has-photo');
      }
      // Placeholder spans (not the ones wrapping the input/img) follow suit.
      if (s.slot) {
        qsa('span', s.slot).forEach(function (sp) {
          if (sp.contains(s.input) || (s.img && sp.contains(s.img))) return;
          if (sp.classList.contains('progress-text')) return;
          if (blob) hide(sp);
          else show(sp);
        });
      }
    }

    ['front', 'back'].forEach(function (side) {
      var input = qs('input[type=file][data-photo="' + side + '"]', section);
      if (!input) return;
      var slot = input.closest('.photo-slot');
      var img = slot ? qs('img.preview, img', slot) : null;
      slots[side] = { input: input, slot: slot, img: img, url: null };
      input.addEventListener('change', function () {
        var file = input.files && input.files[0];
        if (!file) return;
        clearError(errorAnchor());
        if (slot) slot.setAttribute('aria-busy', 'true');
        downscaleImage(file, 1600, 0.85)
          .then(function (blob) {
            blobs[side] = blob;
            setPreview(side, blob);
          })
          .catch(function () {
            blobs[side] = null;
            setPreview(side, null);
            // Told beside the photo it is about, which is marked.
            var title = side === 'front' ? '人像面' : '国徽面';
            showFieldError(input, title + ':无法读取该图片,请重新拍摄或选择 JPG/PNG 格式的照片');
          })
          .then(function () {
            if (slot) slot.removeAttribute('aria-busy');
            // Allow choosing the same file again to re-trigger "change".
            try {
              input.value = '';
            } catch (e) {
              /* ignore */
            }
            refresh();
          });
      });
    });

    // Fills the form from the reading; returns how many values it had.
    function fillFields(ocr) {
      var filled = 0;
      if (!fieldsForm || !ocr || typeof ocr !== 'object') return filled;
      Object.keys(ocr).forEach(function (key) {
        var val = ocr[key];
        if (val === null || val === undefined || val === '' || typeof val === 'object') return;
        val = String(val);
        qsa('[name]', fieldsForm).forEach(function (el) {
          if (el.name !== key) return;
          var type = (el.type || '').toLowerCase();
          if (type === 'file' || type === 'submit' || type === 'button') return;
          if (type === 'radio' || type === 'checkbox') {
            el.checked = el.value === val;
          } else {
            el.value = val;
          }
          filled += 1;
          try {
            el.dispatchEvent(new Event('input', { bubbles: true }));
            el.dispatchEvent(new Event('change', { bubbles: true }));
          } catch (e) {
            /* very old browsers: no Event constructor */
          }
        });
      });
      return filled;
    }

    if (uploadBtn) {
      uploadBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (uploading) return;
        clearError(errorAnchor());
        if (!blobs.front || !blobs.back) {
          showError(errorAnchor(), '请先拍摄身份证人像面和国徽面');
          return;
        }
        var fd = new FormData();
        fd.append('front', blobs.front, 'front.jpg');
        fd.append('back', blobs.back, 'back.jpg');
        uploading = true;
        setBusy(uploadBtn, true);
        if (retakeBtn) retakeBtn.disabled = true;
        uploadWithProgress(action, fd, prog)
          .then(function (resp) {
            uploading = false;
            setBusy(uploadBtn, false);
            if (retakeBtn) retakeBtn.disabled = false;
            prog.set(100, '识别完成');
            var filled = fillFields(resp && resp.ocr);
            if (fieldsForm) {
              // Nothing read (no OCR configured, or an unreadable card): say plainly that the
              // applicant types what is on the card, instead of "check" over empty fields.
              var check = qs('[data-idcard-check]', fieldsForm);
              var manual = qs('[data-idcard-manual]', fieldsForm);
              if (check && manual) {
                if (filled) { show(check); hide(manual); } else { hide(check); show(manual); }
              }
              show(fieldsForm);
              try {
                fieldsForm.scrollIntoView({ behavior: 'smooth', block: 'start' });
              } catch (e) {
                fieldsForm.scrollIntoView();
              }
            }
            refresh();
          })
          .catch(function (err) {
            uploading = false;
            setBusy(uploadBtn, false);
            if (retakeBtn) retakeBtn.disabled = false;
            prog.hide();
            refresh();
            showError(errorAnchor(), errorMessage(err), err);
          });
      });
    }

    if (retakeBtn) {
      retakeBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (uploading) return;
        blobs.front = blobs.back = null;
        ['front', 'back'].forEach(function (side) {
          setPreview(side, null);
          if (slots[side]) {
            try {
              slots[side].input.value = '';
            } catch (e) {
              /* ignore */
            }
          }
        });
        if (fieldsForm) {
          hide(fieldsForm);
          clearError(qs('[type=submit], button', fieldsForm) || fieldsForm);
        }
        prog.hide();
        clearError(errorAnchor());
        refresh();
        try {
          section.scrollIntoView({ behavior: 'smooth', block: 'start' });
        } catch (e) {
          /* ignore */
        }
      });
    }

    refresh();
  }

  // ---------------------------------------------------------------------
  // 4. Liveness video
  // ---------------------------------------------------------------------

  var MIME_CANDIDATES = ['video/mp4;codecs=avc1', 'video/mp4', 'video/webm;codecs=vp8,opus', 'video/webm'];
  var RECORD_MAX_MS = 6000;
  var RECORD_MIN_MS = 2000;
  var CAMERA_DENIED = '无法打开摄像头,请允许访问摄像头和麦克风,或使用下方的录像上传';

  function supportedMimes() {
    if (typeof window.MediaRecorder !== 'function') return [];
    if (typeof MediaRecorder.isTypeSupported !== 'function') return [''];
    var out = MIME_CANDIDATES.filter(function (t) {
      try {
        return MediaRecorder.isTypeSupported(t);
      } catch (e) {
        return false;
      }
    });
    out.push(''); // last resort: the browser's default container
    return out;
  }

  function cameraErrorMessage(err) {
    var name = err && err.name;
    if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
      return '未找到可用的摄像头或麦克风,请使用下方的录像上传';
    }
    if (name === 'NotReadableError' || name === 'TrackStartError') {
      return '摄像头正被其他应用占用,请关闭其他应用后重试,或使用下方的录像上传';
    }
    return CAMERA_DENIED;
  }

  // A <video> that plays a camera stream in the page, muted (iOS and WeChat need every one of
  // these to play it inline without a tap); returns it.
  function inlineSilent(video) {
    video.muted = true;
    video.setAttribute('muted', '');
    video.setAttribute('playsinline', '');
    video.setAttribute('webkit-playsinline', '');
    video.playsInline = true;
    video.autoplay = true;
    return video;
  }

  function initLiveness(section) {
    var challengeAction = section.getAttribute('data-challenge-action');
    var videoAction = section.getAttribute('data-video-action');
    var startBtn = qs('[data-liveness-start]', section);
    var recordBtn = qs('[data-liveness-record]', section);
    var digitsEl = qs('.digits', section);
    var box = qs('.video-box', section);
    var video = box ? qs('video', box) : null;
    var fallback = qs('[data-liveness-fallback]', section);
    var fbInput = fallback ? qs('input[type=file]', fallback) : null;
    var fbBtn = fallback ? qs('[data-liveness-fallback-upload]', fallback) : null;
    var prog = progressUI(section);
    var recordLabel = recordBtn ? recordBtn.textContent : '开始录制';

    var challengeId = null;
    var expiryTimer = null;
    var stream = null;
    var recorder = null;
    var recState = 'idle'; // idle | ready | recording | uploading | done
    var recStarted = 0;
    var tickTimer = null;
    var stopTimer = null;
    var badge = null;

    if (recordBtn) recordBtn.disabled = true;
    if (fbBtn) fbBtn.disabled = !(fbInput && fbInput.files && fbInput.files.length);

    function anchor() {
      return startBtn || recordBtn || section;
    }

    function stopStream() {
      if (stream) {
        try {
          stream.getTracks().forEach(function (t) {
            t.stop();
          });
        } catch (e) {
          /* ignore */
        }
      }
      stream = null;
      if (video) {
        try {
          video.pause();
          video.srcObject = null;
        } catch (e) {
          /* ignore */
        }
      }
    }

    function clearTimers() {
      if (tickTimer) clearInterval(tickTimer);
      if (stopTimer) clearTimeout(stopTimer);
      tickTimer = stopTimer = null;
      if (badge && badge.parentNode) badge.parentNode.removeChild(badge);
      badge = null;
    }

    // Back to the beginning: a new challenge is needed.
    function resetAll() {
      var r = recorder;
      recorder = null;
      recState = 'idle'; // set first: the recorder's onstop then sees an abort
      clearTimers();
      if (r && r.state !== 'inactive') {
        try {
          r.stop();
        } catch (e) {
          /* ignore */
        }
      }
      stopStream();
      challengeId = null;
      if (expiryTimer) clearTimeout(expiryTimer);
      expiryTimer = null;
      if (digitsEl) digitsEl.textContent = '';
      if (recordBtn) {
        recordBtn.textContent = recordLabel;
        setBusy(recordBtn, false);
        recordBtn.disabled = true;
      }
      if (startBtn) {
        setBusy(startBtn, false);
        show(startBtn);
      }
    }

    function showFallback(message) {
      if (fallback) show(fallback);
      if (message) showError(anchor(), message);
    }

    function upload(blob, filename) {
      if (!challengeId) {
        showError(anchor(), '请先点击“进入身份验证”获取数字,再录制视频');
        return Promise.resolve();
      }
      var fd = new FormData();
      fd.append('challenge_id', challengeId);
      fd.append('video', blob, filename);
      recState = 'uploading';
      return uploadWithProgress(videoAction, fd, prog).then(function (resp) {
        recState = 'done';
        if (expiryTimer) clearTimeout(expiryTimer);
        prog.set(100, '上传完成');
        navigate(resp);
      });
    }

    function onUploadError(err) {
      prog.hide();
      // The server may have consumed the challenge: start over with a new one.
      resetAll();
      showError(anchor(), errorMessage(err));
      if (startBtn) startBtn.focus();
    }

    function openCamera() {
      var md = navigator.mediaDevices;
      if (!md || typeof md.getUserMedia !== 'function' || supportedMimes().length === 0) {
        showFallback('当前浏览器不支持页面内录像,请使用下方的录像上传');
        return Promise.resolve();
      }
      return md
        .getUserMedia({ video: { facingMode: 'user', width: { ideal: 640 } }, audio: true })
        .then(function (s) {
          stream = s;
          if (box) show(box);
          // The digits, the camera's picture and 开始录制 together on the screen.
          section.scrollIntoView({ block: 'start' });
          if (video) {
            inlineSilent(video);
            video.srcObject = s;
            var p = video.play();
            if (p && p.catch) p.catch(function () { /* autoplay blocked: stream still attached */ });
          }
          recState = 'ready';
          if (recordBtn) {
            recordBtn.textContent = recordLabel;
            recordBtn.disabled = false;
            show(recordBtn); // the page renders it hidden until the camera is open
          }
        })
        .catch(function (err) {
          stopStream();
          showFallback(cameraErrorMessage(err));
        });
    }

    function startRecording() {
      if (!stream) return;
      var chunks = [];
      var mimes = supportedMimes();
      var chosen = null;
      for (var i = 0; i < mimes.length && !recorder; i++) {
        var opts = { videoBitsPerSecond: 1000000, audioBitsPerSecond: 64000 };
        if (mimes[i]) opts.mimeType = mimes[i];
        var rec = null;
        try {
          rec = new MediaRecorder(stream, opts);
          rec.ondataavailable = function (e) {
            if (e.data && e.data.size) chunks.push(e.data);
          };
          rec.start(1000);
          recorder = rec;
          chosen = mimes[i];
        } catch (e) {
          recorder = null;
        }
      }
      if (!recorder) {
        stopStream();
        showFallback('当前浏览器无法录像,请使用下方的录像上传');
        return;
      }
      var activeRecorder = recorder;
      activeRecorder.onerror = function () {
        clearTimers();
        stopStream();
        recorder = null;
        recState = 'idle';
        if (recordBtn) {
          recordBtn.textContent = recordLabel;
          recordBtn.disabled = true;
        }
        showFallback('录像失败,请使用下方的录像上传');
      };
      activeRecorder.onstop = function () {
        clearTimers();
        stopStream();
        if (recState !== 'recording') return; // aborted
        var type = (activeRecorder.mimeType || chosen || 'video/webm').split(';')[0].trim() || 'video/webm';
        var blob = new Blob(chunks, { type: type });
        if (!blob.size) {
          resetAll();
          showFallback('录像失败,请重试或使用下方的录像上传');
          return;
        }
        var filename = /mp4|quicktime/i.test(type) ? 'liveness.mp4' : 'liveness.webm';
        if (recordBtn) {
          recordBtn.textContent = '上传中…';
          setBusy(recordBtn, true);
        }
        upload(blob, filename).catch(onUploadError);
      };

      recState = 'recording';
      recStarted = Date.now();
      clearError(anchor());
      if (recordBtn) {
        recordBtn.textContent = '停止并上传';
        recordBtn.disabled = true; // not before RECORD_MIN_MS
      }
      if (box) {
        badge = document.createElement('span');
        badge.className = 'rec';
        box.appendChild(badge);
      }
      var tick = function () {
        var elapsed = Date.now() - recStarted;
        var left = Math.max(0, Math.ceil((RECORD_MAX_MS - elapsed) / 1000));
        if (badge) badge.textContent = '录制中 ' + left + '秒';
        if (recordBtn && recState === 'recording' && elapsed >= RECORD_MIN_MS) recordBtn.disabled = false;
      };
      tick();
      tickTimer = setInterval(tick, 250);
      stopTimer = setTimeout(stopRecording, RECORD_MAX_MS);
    }

    function stopRecording() {
      if (!recorder || recState !== 'recording') return;
      if (Date.now() - recStarted < RECORD_MIN_MS) return;
      if (recordBtn) recordBtn.disabled = true;
      try {
        if (recorder.state !== 'inactive') recorder.stop();
      } catch (e) {
        resetAll();
        showFallback('录像失败,请使用下方的录像上传');
      }
    }

    if (startBtn) {
      startBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (startBtn.disabled) return;
        clearError(anchor());
        resetAll();
        setBusy(startBtn, true);
        requestJSON('POST', challengeAction, {})
          .then(function (resp) {
            if (!resp || !resp.challenge_id) throw new ApiError(NETWORK_ERROR, 'bad_answer', 200);
            challengeId = String(resp.challenge_id);
            if (digitsEl) {
              digitsEl.textContent = String(resp.digits || '');
              show(digitsEl);
            }
            startBtn.removeAttribute('aria-busy'); // stays disabled while the challenge lives
            // and out of the way: 开始录制 / 停止并上传 is the one button while recording.
            hide(startBtn);
            var ttl = Number(resp.expires_in_seconds) || 300;
            expiryTimer = setTimeout(function () {
              if (recState === 'uploading' || recState === 'done') return;
              resetAll();
              showError(anchor(), '数字已过期,请重新点击“进入身份验证”');
            }, ttl * 1000);
            return openCamera();
          })
          .catch(function (err) {
            resetAll();
            showError(anchor(), errorMessage(err));
          });
      });
    }

    if (recordBtn) {
      recordBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (recState === 'ready') startRecording();
        else if (recState === 'recording') stopRecording();
      });
    }

    if (fbInput) {
      fbInput.addEventListener('change', function () {
        if (fbBtn) fbBtn.disabled = !(fbInput.files && fbInput.files.length);
        clearError(fbBtn || anchor());
      });
    }

    if (fbBtn) {
      fbBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (fbBtn.getAttribute('aria-busy') === 'true' || recState === 'uploading') return;
        var file = fbInput && fbInput.files && fbInput.files[0];
        clearError(fbBtn);
        if (!file) {
          showError(fbBtn, '请先录制一段视频');
          return;
        }
        if (!challengeId) {
          showError(fbBtn, '请先点击“进入身份验证”获取数字,再录制视频');
          return;
        }
        var type = (file.type || '').toLowerCase();
        var filename = /webm/.test(type) || /\.webm$/i.test(file.name || '') ? 'liveness.webm' : 'liveness.mp4';
        setBusy(fbBtn, true);
        upload(file, filename).catch(function (err) {
          setBusy(fbBtn, false);
          recState = stream ? 'ready' : 'idle';
          prog.hide();
          showError(fbBtn, errorMessage(err));
        });
      });
    }

    window.addEventListener('pagehide', function () {
      clearTimers();
      stopStream();
    });
  }

  // ---------------------------------------------------------------------
  // 5. Signature pad
  // ---------------------------------------------------------------------

  function initSignature(section) {
    var action = section.getAttribute('data-action');
    var pad = qs('.signature-pad', section);
    if (!pad) return;
    var canvas = qs('canvas', pad);
    if (!canvas) {
      canvas = document.createElement('canvas');
      pad.appendChild(canvas);
    }
    var clearBtn = qs('[data-signature-clear]', section);
    var submitBtn = qs('[data-signature-submit]', section);
    var prog = progressUI(section);
    var ctx = canvas.getContext('2d');
    if (!ctx) return;

    var LINE = 3; // CSS px
    var strokes = [];
    var current = null;
    var activeId = null;
    var t0 = null;
    var cssW = 0;
    var cssH = 0;
    var sending = false;

    function setupCanvas() {
      var rect = canvas.getBoundingClientRect();
      var w = Math.round(rect.width);
      var h = Math.round(rect.height);
      if (!w || !h) return false;
      var dpr = window.devicePixelRatio || 1;
      if (w === cssW && h === cssH && canvas.width === Math.round(w * dpr)) return true;
      // The pad changed size (the phone was turned): keep what was signed, scaled evenly so
      // its shape stays and it still fits.
      if (cssW && cssH && (w !== cssW || h !== cssH)) {
        var k = Math.min(w / cssW, h / cssH);
        strokes.forEach(function (stroke) {
          stroke.forEach(function (p) {
            p.x = round1(p.x * k);
            p.y = round1(p.y * k);
          });
        });
      }
      cssW = w;
      cssH = h;
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      redraw();
      return true;
    }

    function paintBackground() {
      ctx.save();
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.restore();
    }

    function pen() {
      ctx.strokeStyle = '#000';
      ctx.fillStyle = '#000';
      ctx.lineWidth = LINE;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
    }

    function mid(a, b) {
      return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    }

    function dot(p) {
      pen();
      ctx.beginPath();
      ctx.arc(p.x, p.y, LINE / 2, 0, Math.PI * 2);
      ctx.fill();
    }

    // Draw the piece added by point n-1 of `pts` (quadratic smoothing through
    // midpoints). `n` defaults to the whole array.
    function drawTail(pts, n) {
      if (n === undefined) n = pts.length;
      if (n < 2) return;
      pen();
      ctx.beginPath();
      if (n === 2) {
        var m = mid(pts[0], pts[1]);
        ctx.moveTo(pts[0].x, pts[0].y);
        ctx.lineTo(m.x, m.y);
      } else {
        var m1 = mid(pts[n - 3], pts[n - 2]);
        var m2 = mid(pts[n - 2], pts[n - 1]);
        ctx.moveTo(m1.x, m1.y);
        ctx.quadraticCurveTo(pts[n - 2].x, pts[n - 2].y, m2.x, m2.y);
      }
      ctx.stroke();
    }

    function drawEnd(pts) {
      var n = pts.length;
      if (n < 2) return;
      var m = mid(pts[n - 2], pts[n - 1]);
      pen();
      ctx.beginPath();
      ctx.moveTo(m.x, m.y);
      ctx.lineTo(pts[n - 1].x, pts[n - 1].y);
      ctx.stroke();
    }

    function drawStroke(pts) {
      if (!pts.length) return;
      dot(pts[0]);
      for (var i = 2; i <= pts.length; i++) drawTail(pts, i);
      drawEnd(pts);
    }

    function redraw() {
      paintBackground();
      strokes.forEach(drawStroke);
      if (current && strokes.indexOf(current) < 0) drawStroke(current);
    }

    function round1(v) {
      return Math.round(v * 10) / 10;
    }

    function pointFrom(e) {
      var rect = canvas.getBoundingClientRect();
      // Event time when available (coalesced events keep their own stamps).
      var now =
        typeof e.timeStamp === 'number' && e.timeStamp > 0
          ? e.timeStamp
          : typeof performance !== 'undefined' && performance.now
            ? performance.now()
            : Date.now();
      if (t0 === null) t0 = now;
      return {
        x: round1(Math.min(Math.max(e.clientX - rect.left, 0), rect.width)),
        y: round1(Math.min(Math.max(e.clientY - rect.top, 0), rect.height)),
        t: Math.max(0, Math.round(now - t0))
      };
    }

    function begin(e) {
      if (sending) return;
      setupCanvas();
      clearError(submitBtn || section);
      current = [];
      strokes.push(current);
      var p = pointFrom(e);
      current.push(p);
      dot(p);
    }

    function extend(e) {
      if (!current) return;
      var p = pointFrom(e);
      var last = current[current.length - 1];
      if (last && last.x === p.x && last.y === p.y) return;
      current.push(p);
      drawTail(current);
    }

    function end() {
      if (!current) return;
      drawEnd(current);
      current = null;
    }

    if (window.PointerEvent) {
      canvas.addEventListener('pointerdown', function (e) {
        if (activeId !== null) return; // ignore a second finger
        if (e.pointerType === 'mouse' && e.button !== 0) return;
        e.preventDefault();
        activeId = e.pointerId;
        try {
          canvas.setPointerCapture(e.pointerId);
        } catch (err) {
          /* ignore */
        }
        begin(e);
      });
      canvas.addEventListener('pointermove', function (e) {
        if (e.pointerId !== activeId) return;
        e.preventDefault();
        var list = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : null;
        if (list && list.length) list.forEach(extend);
        else extend(e);
      });
      var finish = function (e) {
        if (e.pointerId !== activeId) return;
        activeId = null;
        end();
      };
      canvas.addEventListener('pointerup', finish);
      canvas.addEventListener('pointercancel', finish);
      canvas.addEventListener('lostpointercapture', finish);
    } else {
      // Old WebViews without Pointer Events.
      canvas.addEventListener('touchstart', function (e) {
        if (e.touches.length > 1) return;
        e.preventDefault();
        begin(e.changedTouches[0]);
      }, { passive: false });
      canvas.addEventListener('touchmove', function (e) {
        e.preventDefault();
        extend(e.changedTouches[0]);
      }, { passive: false });
      canvas.addEventListener('touchend', end);
      canvas.addEventListener('touchcancel', end);
      var mouseDown = false;
      canvas.addEventListener('mousedown', function (e) {
        if (e.button !== 0) return;
        mouseDown = true;
        begin(e);
      });
      window.addEventListener('mousemove', function (e) {
        if (mouseDown) extend(e);
      });
      window.addEventListener('mouseup', function () {
        if (mouseDown) {
          mouseDown = false;
          end();
        }
      });
    }

    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(function () {
        setupCanvas();
      }).observe(canvas);
    } else {
      var rt = null;
      window.addEventListener('resize', function () {
        clearTimeout(rt);
        rt = setTimeout(setupCanvas, 150);
      });
    }
    setupCanvas();

    function clearPad() {
      strokes = [];
      current = null;
      activeId = null;
      t0 = null;
      setupCanvas();
      paintBackground();
    }

    if (clearBtn) {
      clearBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (sending) return;
        clearPad();
        clearError(submitBtn || section);
        prog.hide();
      });
    }

    if (submitBtn) {
      submitBtn.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (sending) return;
        clearError(submitBtn);
        var total = strokes.reduce(function (n, s) {
          return n + s.length;
        }, 0);
        if (!strokes.length || total < 10) {
          showError(submitBtn, '请在框内签名');
          return;
        }
        setupCanvas();
        sending = true;
        setBusy(submitBtn, true);
        if (clearBtn) clearBtn.disabled = true;
        var payload = JSON.stringify(strokes);
        canvasToBlob(canvas, 'image/png')
          .then(function (blob) {
            var fd = new FormData();
            fd.append('image', blob, 'signature.png');
            fd.append('strokes', payload);
            fd.append('width', String(cssW));
            fd.append('height', String(cssH));
            return uploadWithProgress(action, fd, prog);
          })
          .then(function (resp) {
            prog.set(100, '提交成功');
            navigate(resp);
          })
          .catch(function (err) {
            sending = false;
            setBusy(submitBtn, false);
            if (clearBtn) clearBtn.disabled = false;
            prog.hide();
            showError(submitBtn, errorMessage(err));
          });
      });
    }
  }

  // ---------------------------------------------------------------------
  // 6. Address pickers
  // ---------------------------------------------------------------------

  // The region tree (about 100 KB) is loaded only on the address step, from the content-hashed
  // URL the page names, through the browser's cache: a repeat visit reads it from the cache.
  var regionsPromise = null;

  function loadRegions(url) {
    if (!regionsPromise) {
      var bad = function () {
        throw new ApiError('地区数据加载失败,请检查网络后刷新页面重试', 'regions', 0);
      };
      var request =
        typeof window.fetch === 'function'
          ? window.fetch(url, { credentials: 'same-origin' }).then(function (res) {
              if (!res.ok) bad();
              return res.json();
            }, bad)
          : requestJSON('GET', url);
      regionsPromise = request.then(function (data) {
        if (!Array.isArray(data)) bad();
        return data;
      });
      regionsPromise.catch(function () {
        regionsPromise = null; // allow a retry later
      });
    }
    return regionsPromise;
  }

  function initAddress(form) {
    var sel = {
      p: qs('select[name=province_code]', form),
      c: qs('select[name=city_code]', form),
      d: qs('select[name=district_code]', form)
    };
    if (!sel.p) return;
    var levels = ['p', 'c', 'd'].filter(function (k) {
      return sel[k];
    });
    var placeholders = {};
    var initial = {};
    levels.forEach(function (k) {
      var s = sel[k];
      var first = s.options[0];
      placeholders[k] = first && first.value === '' ? first.cloneNode(true) : new Option('请选择…', '');
      initial[k] = s.getAttribute('data-value') || s.value || '';
    });

    function fill(k, items, parentCode) {
      var s = sel[k];
      if (!s) return;
      while (s.options.length) s.remove(0);
      if (items === null) {
        // Parent not chosen yet.
        s.add(placeholders[k].cloneNode(true));
        s.value = '';
        return;
      }
      if (!items.length) {
        // No children: one "(无)" option carrying the parent's code.
        s.add(new Option('(无)', parentCode, true, true));
        s.value = parentCode;
        return;
      }
      s.add(placeholders[k].cloneNode(true));
      items.forEach(function (it) {
        s.add(new Option(it.n, it.c));
      });
      s.value = items.length === 1 ? items[0].c : '';
    }

    function childrenOf(list, code) {
      if (!code) return null;
      for (var i = 0; i < list.length; i++) {
        if (list[i].c === code) return list[i].s || [];
      }
      return null;
    }

    var data = [];

    function cascadeFrom(k) {
      // Recompute the levels below k from the current selections.
      var idx = levels.indexOf(k);
      var list = data;
      for (var i = 0; i <= idx; i++) {
        var code = sel[levels[i]].value;
        var kids = list ? childrenOf(list, code) : null;
        if (i === idx) {
          var next = levels[i + 1];
          if (!next) return;
          // A "(无)" parent (code repeated from above) has no children either.
          fill(next, kids === null && code ? [] : kids, code);
          cascadeFrom(next);
          return;
        }
        list = kids;
      }
    }

    function select(k, code) {
      var s = sel[k];
      if (!s || !code) return false;
      for (var i = 0; i < s.options.length; i++) {
        if (s.options[i].value === code) {
          s.value = code;
          return true;
        }
      }
      return false;
    }

    levels.forEach(function (k) {
      sel[k].addEventListener('change', function () {
        clearError(sel[k]);
        cascadeFrom(k);
      });
    });

    loadRegions(form.getAttribute('data-regions'))
      .then(function (regions) {
        data = regions;
        fill('p', regions, '');
        select('p', initial.p);
        cascadeFrom('p');
        if (sel.c && select('c', initial.c)) cascadeFrom('c');
        if (sel.d) select('d', initial.d);
      })
      .catch(function () {
        showError(sel.p, '地区数据加载失败,请刷新页面重试');
      });
  }

  // ---------------------------------------------------------------------
  // 7. Generic action buttons
  // ---------------------------------------------------------------------

  function initPostButton(btn) {
    btn.addEventListener('click', function (ev) {
      ev.preventDefault();
      if (btn.disabled || btn.getAttribute('aria-busy') === 'true') return;
      var question = btn.getAttribute('data-confirm');
      if (question && !window.confirm(question)) return;
      var body = {};
      var raw = btn.getAttribute('data-body');
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch (e) {
          body = {};
        }
      }
      clearError(btn);
      setBusy(btn, true);
      requestJSON('POST', btn.getAttribute('data-action'), body)
        .then(function (resp) {
          navigate(resp);
        })
        .catch(function (err) {
          setBusy(btn, false);
          showError(btn, errorMessage(err));
        });
    });
  }

  // ---------------------------------------------------------------------
  // 8. Polling (payment result)
  // ---------------------------------------------------------------------

  var POLL_INTERVAL_MS = 1500;
  var POLL_GIVE_UP_MS = 2 * 60 * 1000;

  function initPoll(el) {
    var url = el.getAttribute('data-url');
    if (!url) return;
    var until = (el.getAttribute('data-until') || '')
      .split(',')
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
    var started = Date.now();
    var stopped = false;

    function giveUp() {
      stopped = true;
      el.textContent = '支付结果确认中,请稍后在订单详情查看';
    }

    function poll() {
      if (stopped) return;
      if (Date.now() - started >= POLL_GIVE_UP_MS) {
        giveUp();
        return;
      }
      requestJSON('GET', url)
        .then(
          function (resp) {
            if (resp && until.indexOf(String(resp.state)) >= 0) {
              stopped = true;
              navigate(resp);
              return;
            }
            schedule();
          },
          function () {
            schedule(); // transient errors: keep trying until the deadline
          }
        );
    }

    function schedule() {
      if (stopped) return;
      var left = POLL_GIVE_UP_MS - (Date.now() - started);
      if (left <= 0) {
        giveUp();
        return;
      }
      setTimeout(poll, Math.min(POLL_INTERVAL_MS, left));
    }

    schedule();
  }

  // ---------------------------------------------------------------------
  // 9. Payment channel form
  // ---------------------------------------------------------------------

  // WeChat's in-app cashier. Its front-end result is not proof of payment: whatever it
  // says, the order page shows what the gateway confirmed.
  function payInWechat(params, returnUrl, fail) {
    function invoke() {
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (res) {
        var msg = res && res.err_msg;
        if (msg === 'get_brand_wcpay_request:fail') {
          fail('支付未完成,请重试');
          return;
        }
        window.location.href = returnUrl;
      });
    }
    if (window.WeixinJSBridge) {
      invoke();
    } else if (document.addEventListener) {
      document.addEventListener('WeixinJSBridgeReady', invoke, false);
    } else {
      fail('请在微信中打开本页面完成支付');
    }
  }

  function initPay(form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (form.__yqBusy) return;
      var btn = submitterOf(form, ev);
      var checked = qs('input[name=channel]:checked', form);
      clearError(btn || form);
      if (!checked) {
        showError(btn || form, '请选择支付方式');
        return;
      }
      var action = form.getAttribute('data-action') || form.getAttribute('action');
      form.__yqBusy = true;
      setBusy(btn, true);
      requestJSON('POST', action, { channel: checked.value })
        .then(function (resp) {
          if (resp && resp.kind === 'wechat_jsapi' && resp.params) {
            payInWechat(resp.params, resp.return_url, function (msg) {
              form.__yqBusy = false;
              setBusy(btn, false);
              showError(btn || form, msg);
            });
          } else if (resp && resp.kind === 'authorize' && resp.authorize_url) {
            window.location.href = resp.authorize_url;
          } else if (resp && typeof resp.pay_url === 'string' && resp.pay_url) {
            window.location.href = resp.pay_url;
          } else {
            navigate(resp);
          }
        })
        .catch(function (err) {
          form.__yqBusy = false;
          setBusy(btn, false);
          showError(btn || form, errorMessage(err));
        });
    });
  }

  // ---------------------------------------------------------------------
  // 10. Conditional fields
  // ---------------------------------------------------------------------

  function initShowIf(el) {
    var form = el.closest('form');
    var spec = el.getAttribute('data-show-if') || '';
    var eq = spec.indexOf('=');
    if (!form || eq < 1) return;
    var name = spec.slice(0, eq);
    var want = spec.slice(eq + 1);
    var controls = qsa('input, select, textarea', el);

    function update() {
      // A radio group is a RadioNodeList whose value is the checked radio's.
      var field = form.elements[name];
      var on = !!field && String(field.value == null ? '' : field.value) === want;
      if (on) show(el);
      else hide(el);
      controls.forEach(function (c) {
        c.disabled = !on;
      });
    }

    form.addEventListener('change', update);
    update();
  }

  // ---------------------------------------------------------------------
  // 11. Network and device check (办理前准备)
  // ---------------------------------------------------------------------

  // When what runs: the checks that need no permission (server, upload speed, battery) run
  // as soon as the page opens, so the applicant sees whether the network is fine without
  // doing anything (the guide: 按提示查看网络是否正常). The camera and light checks run only
  // after a tap on 开始检测: a permission prompt that pops up before the applicant asked for
  // anything is confusing, and browsers (WeChat's among them) may refuse the camera without a
  // tap. The button runs every check again (重新检测). The check only advises: the 开始 link
  // of the page works whatever it found.

  var PROBE_PINGS = 3; // round trips measured; the median counts
  var PROBE_UPLOAD_BYTES = 256 * 1024; // the upload-speed probe's body (the server takes 512 KiB)
  var PROBE_PING_TIMEOUT_MS = 10000;
  var PROBE_UPLOAD_TIMEOUT_MS = 60000;
  var SLOW_RTT_MS = 1000; // a median round trip above this is worth a warning
  var FAST_UPLOAD_MBPS = 100; // 256 KiB cannot measure more than this with any precision
  var FACE_VIDEO_MB = 3; // what a face video weighs, roughly (6 s recorded, or a phone's own)
  var SLOW_VIDEO_UPLOAD_S = 30; // a face video upload longer than this: advise Wi-Fi
  // Mean luma (0-255, BT.601) of a camera frame below which the room is too dark. Phone
  // cameras expose for mid grey (about 110-130) wherever they can, so a frame that stays
  // under 70 means there is not enough light for a clear face video.
  var DARK_LUMA = 70;
  var LIGHT_SETTLE_MS = 700; // let the camera's auto exposure settle before the frame
  var FRAME_TIMEOUT_MS = 5000; // no frame by then: the light is not measured
  var LOW_BATTERY = 0.2; // below this, and not charging: advise charging

  function nowMs() {
    return window.performance && typeof performance.now === 'function' ? performance.now() : Date.now();
  }

  function median(values) {
    var v = values.slice().sort(function (a, b) {
      return a - b;
    });
    var mid = Math.floor(v.length / 2);
    return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  }

  // Random bytes: nothing on the way (a carrier's proxy) can compress them.
  function randomBytes(n) {
    var out = new Uint8Array(n);
    var c = window.crypto || window.msCrypto;
    if (c && typeof c.getRandomValues === 'function') {
      for (var i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    } else {
      for (var j = 0; j < n; j++) out[j] = Math.floor(Math.random() * 256);
    }
    return out;
  }

  // One probe request, timed: resolves {ms, data} or rejects with an ApiError.
  function probeRequest(method, url, body, timeoutMs) {
    var started = nowMs();
    return xhrRequest(method, url, body || undefined, body ? 'application/octet-stream' : null, null, timeoutMs).then(
      function (data) {
        return { ms: nowMs() - started, data: data };
      }
    );
  }

  function formatSeconds(s) {
    if (s < 1) return '不到 1 秒';
    if (s < 90) return '约 ' + Math.round(s) + ' 秒';
    return '约 ' + Math.round(s / 60) + ' 分钟';
  }

  function isWechat() {
    return /MicroMessenger/i.test(navigator.userAgent || '');
  }

  // What the applicant should do when getUserMedia failed: [state word, instruction].
  function cameraCheckFix(err) {
    var name = err && err.name;
    if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
      return ['未找到设备', '未找到可用的前置摄像头或麦克风,请换用带前置摄像头的手机办理。'];
    }
    if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') {
      return ['被占用', '摄像头或麦克风正被其他应用使用,请关闭其他应用(如视频通话)后点击“重新检测”。'];
    }
    // NotAllowedError, PermissionDeniedError, SecurityError and anything else: no permission.
    if (isWechat()) {
      return [
        '未允许',
        '请在微信的提示中选择“允许”使用摄像头和麦克风;如果没有提示,请在手机“设置”中为微信开启相机和麦克风权限,然后点击“重新检测”。'
      ];
    }
    return [
      '未允许',
      '请在浏览器的提示中选择“允许”使用摄像头和麦克风;如果已经拒绝,请在浏览器设置和手机“设置”中开启相机和麦克风权限,然后点击“重新检测”。'
    ];
  }

  function stopTracks(stream) {
    if (!stream) return;
    try {
      stream.getTracks().forEach(function (t) {
        t.stop();
      });
    } catch (e) {
      /* ignore */
    }
  }

  // Mean luma (BT.601) of the video's current frame, drawn small.
  function meanLuma(video) {
    var w = video.videoWidth;
    var h = video.videoHeight;
    if (!w || !h) throw new Error('no frame');
    var canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = Math.max(1, Math.round((64 * h) / w));
    var g = canvas.getContext('2d');
    g.drawImage(video, 0, 0, canvas.width, canvas.height);
    var px = g.getImageData(0, 0, canvas.width, canvas.height).data;
    var sum = 0;
    for (var i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    return sum / (px.length / 4);
  }

  // Plays the stream in an invisible inline video and measures one frame once the camera has
  // settled; resolves the mean luma, rejects when no frame came.
  function measureLight(host, stream) {
    return new Promise(function (resolve, reject) {
      var video = inlineSilent(document.createElement('video'));
      var done = false;
      var sampling = false;
      video.className = 'check-video';
      host.appendChild(video);
      var timer = setTimeout(function () {
        finish(null);
      }, FRAME_TIMEOUT_MS);
      function finish(luma) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        try {
          video.pause();
          video.srcObject = null;
        } catch (e) {
          /* ignore */
        }
        if (video.parentNode) video.parentNode.removeChild(video);
        if (luma === null) reject(new Error('no frame'));
        else resolve(luma);
      }
      function sample() {
        if (sampling) return;
        sampling = true;
        setTimeout(function () {
          var luma = null;
          try {
            luma = meanLuma(video);
          } catch (e) {
            luma = null;
          }
          finish(luma);
        }, LIGHT_SETTLE_MS);
      }
      video.addEventListener('playing', sample);
      video.addEventListener('loadeddata', sample);
      try {
        video.srcObject = stream;
      } catch (e) {
        finish(null);
        return;
      }
      var p = video.play();
      if (p && p.catch) p.catch(function () { /* muted inline video: frames come anyway */ });
    });
  }

  function initNetworkCheck(section) {
    var probeUrl = section.getAttribute('data-probe-url');
    var runBtn = qs('[data-network-check-run]', section);
    var summary = qs('.check-summary', section);
    var rows = {};
    each(qsa('[data-check]', section), function (row) {
      rows[row.getAttribute('data-check')] = row;
    });
    var runId = 0;
    var cameraChecked = false;
    var stream = null;
    var initial = {};
    each(Object.keys(rows), function (key) {
      var w = qs('.check-state', rows[key]);
      var d = qs('.check-detail', rows[key]);
      initial[key] = [w ? w.textContent : '', d ? d.textContent : ''];
    });

    show(section);

    function set(key, state, word, detail) {
      var row = rows[key];
      if (!row) return;
      row.setAttribute('data-state', state);
      var w = qs('.check-state', row);
      var d = qs('.check-detail', row);
      if (w) w.textContent = word;
      if (d) d.textContent = detail || '';
    }

    function stopStream() {
      stopTracks(stream);
      stream = null;
    }

    function bust(url) {
      return url + (url.indexOf('?') < 0 ? '?' : '&') + '_=' + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    }

    // Resolves the median round trip in ms, or null when the server was not reached.
    function checkServer(id) {
      set('server', 'running', '检测中', '');
      var times = [];
      function ping(i) {
        if (i >= PROBE_PINGS) return Promise.resolve();
        return probeRequest('GET', bust(probeUrl), null, PROBE_PING_TIMEOUT_MS).then(function (r) {
          times.push(r.ms);
          return ping(i + 1);
        });
      }
      return ping(0).then(
        function () {
          var rtt = median(times);
          if (id !== runId) return null;
          var ms = Math.max(1, Math.round(rtt));
          if (rtt > SLOW_RTT_MS) {
            set('server', 'warn', '延迟较高', '已连接服务器,但网络延迟较高(约 ' + ms + ' 毫秒),建议连接 Wi-Fi 或移到信号更好的地方。');
          } else {
            set('server', 'ok', '正常', '已连接服务器,延迟约 ' + ms + ' 毫秒');
          }
          return rtt;
        },
        function (err) {
          if (id !== runId) return null;
          if (err && err.status === 401) {
            set('server', 'fail', '未登录', '登录已失效,请刷新页面后重新登录。');
          } else {
            set('server', 'fail', '无法连接', '无法连接服务器,请检查手机网络(可切换 Wi-Fi 或移动数据)后点击“重新检测”。');
          }
          return null;
        }
      );
    }

    function checkUpload(id, rtt) {
      if (rtt === null) {
        set('upload', 'skip', '未检测', '连接服务器后才能测速。');
        return Promise.resolve();
      }
      set('upload', 'running', '检测中', '');
      var bytes = randomBytes(PROBE_UPLOAD_BYTES);
      var body = typeof window.Blob === 'function' ? new Blob([bytes], { type: 'application/octet-stream' }) : bytes.buffer;
      return probeRequest('POST', bust(probeUrl), body, PROBE_UPLOAD_TIMEOUT_MS).then(
        function (r) {
          if (id !== runId) return;
          if (!r.data || r.data.received_bytes !== PROBE_UPLOAD_BYTES) {
            set('upload', 'warn', '不稳定', '测速数据没有完整送达,网络可能不稳定,建议连接 Wi-Fi 后点击“重新检测”。');
            return;
          }
          // The time includes one round trip for the answer: take it off, but never more than
          // half, so a jittery round trip cannot make the speed absurd.
          var secs = Math.max(r.ms - rtt, r.ms / 2) / 1000;
          var mbps = (PROBE_UPLOAD_BYTES * 8) / Math.max(secs, 0.001) / 1e6;
          var speed =
            mbps >= FAST_UPLOAD_MBPS
              ? '上传速度超过 ' + FAST_UPLOAD_MBPS + ' Mbps'
              : '上传速度约 ' + (mbps >= 10 ? Math.round(mbps) : Math.max(0.1, Math.round(mbps * 10) / 10)) + ' Mbps';
          var videoSecs = (FACE_VIDEO_MB * 8) / mbps;
          var eta = '上传人脸视频(约 ' + FACE_VIDEO_MB + ' MB)预计' + formatSeconds(videoSecs);
          if (videoSecs > SLOW_VIDEO_UPLOAD_S) {
            set('upload', 'warn', '网速较慢', speed + ',' + eta + '。建议连接 Wi-Fi,或移到信号更好的地方后点击“重新检测”。');
          } else {
            set('upload', 'ok', '正常', speed + ',' + eta + '。');
          }
        },
        function (err) {
          if (id !== runId) return;
          var why = err && err.code === 'timeout' ? '测速超时,网速很慢' : '测速中断,网络不稳定';
          set('upload', 'fail', '上传失败', why + ',上传视频可能失败。建议连接 Wi-Fi 或移到信号更好的地方后点击“重新检测”。');
        }
      );
    }

    function checkBattery(id) {
      if (!rows.battery || typeof navigator.getBattery !== 'function') return Promise.resolve();
      var asked;
      try {
        asked = navigator.getBattery();
      } catch (e) {
        return Promise.resolve();
      }
      return Promise.resolve(asked).then(
        function (b) {
          if (id !== runId || !b || typeof b.level !== 'number' || !isFinite(b.level)) return;
          var pct = Math.round(b.level * 100);
          show(rows.battery);
          if (!b.charging && b.level < LOW_BATTERY) {
            set('battery', 'warn', '电量低', '电量约 ' + pct + '%,建议先充电或接上充电器,以免拍摄和录像时手机关机。');
          } else {
            set('battery', 'ok', '正常', (b.charging ? '正在充电,' : '') + '电量约 ' + pct + '%');
          }
        },
        function () {
          /* the browser does not tell: say nothing */
        }
      );
    }

    // Opens the front camera and the microphone, measures the light of one frame, and stops
    // every track right after.
    function checkCamera(id) {
      var md = navigator.mediaDevices;
      if (!md || typeof md.getUserMedia !== 'function') {
        set('camera', 'warn', '无法检测', '当前浏览器无法在页面内打开摄像头。人脸验证时可以用手机相机录像后上传。');
        set('light', 'skip', '未检测', '请在光线充足的地方拍摄和录像。');
        return Promise.resolve();
      }
      set('camera', 'running', '检测中', '请在弹出的提示中允许使用摄像头和麦克风');
      set('light', 'running', '检测中', '');
      var asked;
      try {
        asked = md.getUserMedia({ video: { facingMode: 'user', width: { ideal: 640 } }, audio: true });
      } catch (e) {
        asked = Promise.reject(e);
      }
      return Promise.resolve(asked).then(
        function (s) {
          if (id !== runId) {
            stopTracks(s);
            return;
          }
          stream = s;
          var hasVideo = s.getVideoTracks && s.getVideoTracks().length > 0;
          var hasAudio = s.getAudioTracks && s.getAudioTracks().length > 0;
          if (hasVideo && hasAudio) {
            set('camera', 'ok', '正常', '摄像头和麦克风可以使用');
          } else {
            set('camera', 'warn', hasVideo ? '无麦克风' : '无摄像头', (hasVideo ? '未能使用麦克风' : '未能使用摄像头') + ',请检查权限设置后点击“重新检测”。');
          }
          if (!hasVideo) {
            stopStream();
            set('light', 'skip', '未检测', '需要摄像头才能检测光线。');
            return;
          }
          return measureLight(section, s).then(
            function (luma) {
              if (id !== runId) return;
              if (luma < DARK_LUMA) {
                set('light', 'warn', '偏暗', '光线较暗,请到明亮处,或打开灯后点击“重新检测”。');
              } else {
                set('light', 'ok', '正常', '光线充足');
              }
            },
            function () {
              if (id !== runId) return;
              set('light', 'skip', '未检测', '未能读取摄像头画面,请在光线充足的地方拍摄和录像。');
            }
          ).then(function () {
            if (stream === s) stopStream();
            else stopTracks(s);
          });
        },
        function (err) {
          if (id !== runId) return;
          var fix = cameraCheckFix(err);
          set('camera', 'fail', fix[0], fix[1]);
          set('light', 'skip', '未检测', '允许使用摄像头后才能检测光线。');
        }
      );
    }

    function summarise() {
      var problems = 0;
      for (var key in rows) {
        if (!rows.hasOwnProperty(key) || rows[key].classList.contains('hidden')) continue;
        var st = rows[key].getAttribute('data-state');
        if (st === 'warn' || st === 'fail') problems++;
      }
      if (problems) {
        summary.textContent = '有 ' + problems + ' 项需要注意,请按提示处理后点击“重新检测”。检测结果仅供参考,也可以直接点击“开始”。';
      } else if (cameraChecked) {
        summary.textContent = '检测完成,一切正常,请点击“开始”。';
      } else {
        summary.textContent = '网络正常。点击“开始检测”检查摄像头和光线。';
      }
      section.setAttribute('data-checked', cameraChecked ? 'all' : 'network');
    }

    // One run of the checks; a newer run makes the results of an older one stale.
    function run(withCamera) {
      var id = ++runId;
      stopStream();
      section.removeAttribute('data-checked');
      if (summary) summary.textContent = '';
      // The camera first, still inside the tap that asked for it.
      var camera = withCamera ? checkCamera(id) : Promise.resolve();
      var network = checkServer(id).then(function (rtt) {
        if (id === runId) return checkUpload(id, rtt);
      });
      var all = Promise.all([camera, network, checkBattery(id)]);
      return all.then(null, function (e) {
        if (window.console) console.error('yiqian:', e);
      }).then(function () {
        if (id !== runId) return;
        if (withCamera) cameraChecked = true;
        if (summary) summarise();
        if (runBtn && cameraChecked) runBtn.textContent = '重新检测';
      });
    }

    if (runBtn) {
      runBtn.addEventListener('click', function () {
        setBusy(runBtn, true);
        run(true).then(function () {
          setBusy(runBtn, false);
        });
      });
    }
    // Leaving the page never leaves the camera on; coming back to it from the browser's cache
    // checks the network again (the camera once asked).
    window.addEventListener('pagehide', function () {
      runId++;
      stopStream();
    });
    window.addEventListener('pageshow', function (ev) {
      if (!ev.persisted || !probeUrl) return;
      each(['camera', 'light'], function (key) {
        if (rows[key] && rows[key].getAttribute('data-state') === 'running') {
          set(key, 'idle', initial[key][0], initial[key][1]);
        }
      });
      run(false);
    });

    if (probeUrl) run(false);
  }

  // ---------------------------------------------------------------------
  // Boot
  // ---------------------------------------------------------------------

  function boot() {
    if (!document.querySelector || !window.Promise) return; // hopeless browser: plain HTML only
    each(qsa('form[data-api-form]:not([data-pay])'), initApiForm);
    each(qsa('button[data-sms-send]'), initSmsButton);
    each(qsa('section[data-idcard]'), initIdcard);
    each(qsa('section[data-liveness]'), initLiveness);
    each(qsa('section[data-signature]'), initSignature);
    each(qsa('form[data-address]'), initAddress);
    each(qsa('button[data-post]'), initPostButton);
    each(qsa('[data-poll]'), initPoll);
    each(qsa('form[data-pay]'), initPay);
    each(qsa('form [data-show-if]'), initShowIf);
    each(qsa('section[data-network-check]'), initNetworkCheck);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', boot);
  } else {
    boot();
  }
})();
