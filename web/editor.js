// editor.js — the inpaint page's canvas: the image, the mask painted over it
// as a translucent overlay, brush and eraser strokes, undo/redo, zoom and
// pan, and the before/after comparison. Knows nothing of HTTP.
//
// The mask lives in an offscreen canvas the size of the image (strokes in
// image pixels, opaque colour on transparent). History is a list of
// operations — a loaded or inpainted image, a stroke, a clear — and a
// position in it: the image is the last image operation before the
// position, the mask is the strokes after it replayed. Undo and redo move
// the position, so an inpaint result can be undone like a stroke, and
// memory holds stroke points, not mask snapshots.

const MASK_RGB = [255, 48, 96];           // the overlay's colour
const MASK_ALPHA = 0.5;                   // and its opacity on screen
const ZOOM_MIN = 0.02, ZOOM_MAX = 32;

function makeCanvas(w, h) {
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  return c;
}

export class Editor {
  /**
   * @param {HTMLCanvasElement} view the visible canvas (sized to its box)
   * @param {{onChange?: (what: string) => void}} opts called after any state change
   */
  constructor(view, { onChange = () => {} } = {}) {
    this.view = view;
    this.ctx = view.getContext('2d');
    this.onChange = onChange;
    this.ops = [];
    this.pos = 0;
    this.mask = null;          // canvas, image size
    this.maskCtx = null;
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.fitted = true;        // follow the box size until the user zooms
    this.tool = 'brush';       // 'brush' | 'eraser' | 'pan'
    this.brushSize = 40;       // image pixels
    this.showMask = true;
    this.compareHold = false;  // show the original while held
    this.split = null;         // null, or 0..1: left part shows the original
    this.tempPan = false;      // space held
    this.pointer = null;       // last pointer position on the view (CSS px)
    this.stroke = null;        // the stroke being drawn
    this.drag = null;          // pan in progress
    this.touches = new Map();  // active touch pointers, for pinch
    this.version = 0;          // bumps on every image change
    this._raf = 0;
    this._bind();
    this._resize();
  }

  // ------------------------------------------------------------ state

  get hasImage() { return this.ops.length > 0; }
  get imageOp() {
    for (let i = this.pos - 1; i >= 0; i--) if (this.ops[i].type === 'image') return this.ops[i];
    return null;
  }
  get image() { return this.imageOp?.bitmap ?? null; }
  get original() { return this.ops[0]?.bitmap ?? null; }
  get width() { return this.image?.width ?? 0; }
  get height() { return this.image?.height ?? 0; }
  get canUndo() { return this.pos > 1; }
  get canRedo() { return this.pos < this.ops.length; }
  /** Whether an inpaint result is showing (there is something to compare with). */
  get hasResult() { return this.imageOp !== null && this.imageOp !== this.ops[0]; }

  /** Starts over with a new image (history cleared). */
  load(bitmap, blob, name) {
    this.ops = [{ type: 'image', bitmap, blob, name }];
    this.pos = 1;
    this.mask = makeCanvas(bitmap.width, bitmap.height);
    this.maskCtx = this.mask.getContext('2d', { willReadFrequently: true });
    this.split = null;
    this.fit();
    this.version++;
    this._changed('load');
  }

  /** Makes an inpaint result the current image (undoable; the mask starts empty). */
  pushResult(bitmap, blob) {
    this._push({ type: 'image', bitmap, blob, name: this.ops[0].name });
    this.version++;
    this._rebuildMask();
    this._changed('result');
  }

  undo() {
    if (!this.canUndo) return false;
    const imageBefore = this.imageOp;
    this.pos--;
    if (this.imageOp !== imageBefore) this.version++;
    this._rebuildMask();
    this._changed('undo');
    return true;
  }

  redo() {
    if (!this.canRedo) return false;
    const imageBefore = this.imageOp;
    this.pos++;
    if (this.imageOp !== imageBefore) this.version++;
    this._rebuildMask();
    this._changed('redo');
    return true;
  }

  /** Clears the mask (undoable). */
  clearMask() {
    if (!this.hasImage || this.maskPixels() === 0) return;
    this._push({ type: 'clear' });
    this._rebuildMask();
    this._changed('clear');
  }

  setTool(t) { this.tool = t; this._changed('tool'); this.render(); }
  setBrushSize(px) {
    this.brushSize = Math.max(1, Math.min(1000, Math.round(px)));
    this._changed('brush'); this.render();
  }
  setShowMask(on) { this.showMask = on; this._changed('mask-visibility'); this.render(); }
  setCompareHold(on) { if (this.compareHold !== on) { this.compareHold = on; this._changed('compare'); this.render(); } }
  setSplit(v) { this.split = v == null ? null : Math.max(0, Math.min(1, v)); this._changed('compare'); this.render(); }

  /** Mask pixels that count as hole (alpha ≥ 128, as sent to the server). */
  maskPixels() {
    if (!this.mask) return 0;
    if (this._maskCount == null) {
      const d = this.maskCtx.getImageData(0, 0, this.mask.width, this.mask.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] >= 128) n++;
      this._maskCount = n;
    }
    return this._maskCount;
  }

  /** The mask as the server wants it: a black and white PNG, white = hole. */
  maskBlob() {
    const w = this.mask.width, h = this.mask.height;
    const src = this.maskCtx.getImageData(0, 0, w, h).data;
    const out = new ImageData(w, h);
    const d = out.data;
    for (let i = 0; i < d.length; i += 4) {
      const v = src[i + 3] >= 128 ? 255 : 0;
      d[i] = d[i + 1] = d[i + 2] = v; d[i + 3] = 255;
    }
    const c = makeCanvas(w, h);
    c.getContext('2d').putImageData(out, 0, 0);
    return new Promise((res, rej) => c.toBlob((b) => (b ? res(b) : rej(new Error('mask encoding failed'))), 'image/png'));
  }

  /** The current image as a canvas (for downloads in other formats). */
  imageCanvas(background = null) {
    const c = makeCanvas(this.width, this.height);
    const g = c.getContext('2d');
    if (background) { g.fillStyle = background; g.fillRect(0, 0, c.width, c.height); }
    g.drawImage(this.image, 0, 0);
    return c;
  }

  // ------------------------------------------------------------- view

  /** Fits the image in the view, centred (never above 100%). */
  fit() {
    if (!this.hasImage) return;
    const { w, h } = this._box();
    const pad = 16;
    const z = Math.min((w - pad) / this.width, (h - pad) / this.height, 1);
    this.zoom = Math.max(ZOOM_MIN, z);
    this.panX = (w - this.width * this.zoom) / 2;
    this.panY = (h - this.height * this.zoom) / 2;
    this.fitted = true;
    this._changed('zoom');
    this.render();
  }

  /** Zooms to `z` keeping the view point (cx, cy) (default: centre) fixed. */
  zoomTo(z, cx, cy) {
    if (!this.hasImage) return;
    const { w, h } = this._box();
    if (cx == null) { cx = w / 2; cy = h / 2; }
    z = Math.max(ZOOM_MIN, Math.min(ZOOM_MAX, z));
    const ix = (cx - this.panX) / this.zoom, iy = (cy - this.panY) / this.zoom;
    this.zoom = z;
    this.panX = cx - ix * z;
    this.panY = cy - iy * z;
    this.fitted = false;
    this._changed('zoom');
    this.render();
  }

  zoomBy(f, cx, cy) { this.zoomTo(this.zoom * f, cx, cy); }

  /** View (CSS px, relative to the canvas) → image pixel coordinates. */
  toImage(x, y) { return [(x - this.panX) / this.zoom, (y - this.panY) / this.zoom]; }
  /** Image → view coordinates. */
  toView(x, y) { return [x * this.zoom + this.panX, y * this.zoom + this.panY]; }

  render() {
    if (this._raf) return;
    this._raf = requestAnimationFrame(() => { this._raf = 0; this._draw(); });
  }

  // --------------------------------------------------------- internals

  _box() { return { w: this.view.clientWidth || 1, h: this.view.clientHeight || 1 }; }

  _changed(what) { this.onChange(what); }

  _push(op) {
    this.ops.length = this.pos; // a new action drops the redo tail
    this.ops.push(op);
    this.pos++;
  }

  /** Redraws the mask from the strokes since the current image (or last clear). */
  _rebuildMask() {
    const g = this.maskCtx;
    if (!g) return;
    this._maskCount = null;
    g.clearRect(0, 0, this.mask.width, this.mask.height);
    let start = 0;
    for (let i = this.pos - 1; i >= 0; i--) {
      const t = this.ops[i].type;
      if (t === 'image' || t === 'clear') { start = i + 1; break; }
    }
    for (let i = start; i < this.pos; i++) {
      const op = this.ops[i];
      if (op.type !== 'stroke') continue;
      this._dab(op, op.points[0], op.points[0]);
      for (let j = 1; j < op.points.length; j++) this._dab(op, op.points[j - 1], op.points[j]);
    }
    this.render();
  }

  /** Paints one segment of a stroke into the mask (a dot when a === b). */
  _dab(op, a, b) {
    const g = this.maskCtx;
    this._maskCount = null;
    g.save();
    g.globalCompositeOperation = op.erase ? 'destination-out' : 'source-over';
    g.fillStyle = g.strokeStyle = `rgb(${MASK_RGB.join(',')})`;
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.lineWidth = op.size;
    g.beginPath();
    if (a[0] === b[0] && a[1] === b[1]) {
      g.arc(a[0], a[1], op.size / 2, 0, Math.PI * 2);
      g.fill();
    } else {
      g.moveTo(a[0], a[1]);
      g.lineTo(b[0], b[1]);
      g.stroke();
    }
    g.restore();
  }

  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const { w, h } = this._box();
    const W = Math.max(1, Math.round(w * dpr)), H = Math.max(1, Math.round(h * dpr));
    if (this.view.width !== W || this.view.height !== H) {
      this.view.width = W; this.view.height = H;
    }
    if (this.fitted && this.hasImage) this.fit();
    else this.render();
  }

  _draw() {
    const g = this.ctx, dpr = window.devicePixelRatio || 1;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, this.view.width, this.view.height);
    if (!this.hasImage) return;
    g.setTransform(dpr * this.zoom, 0, 0, dpr * this.zoom, dpr * this.panX, dpr * this.panY);
    g.imageSmoothingEnabled = this.zoom < 2;
    const w = this.width, h = this.height;
    g.drawImage(this.compareHold ? this.original : this.image, 0, 0);
    const splitting = this.split != null && !this.compareHold && this.hasResult;
    if (splitting) {
      g.save();
      g.beginPath();
      g.rect(0, 0, w * this.split, h);
      g.clip();
      g.drawImage(this.original, 0, 0);
      g.restore();
    }
    if (this.showMask && !this.compareHold) {
      g.globalAlpha = MASK_ALPHA;
      g.drawImage(this.mask, 0, 0);
      g.globalAlpha = 1;
    }
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (splitting) {
      const [x] = this.toView(w * this.split, 0);
      const [, y0] = this.toView(0, 0), [, y1] = this.toView(0, h);
      g.strokeStyle = '#fff'; g.lineWidth = 2;
      g.beginPath(); g.moveTo(x, y0); g.lineTo(x, y1); g.stroke();
      const top = Math.max(8, y0 + 8);
      this._tag('before', x - 6, top, 'right');
      this._tag('after', x + 6, top, 'left');
    }
    if (this.compareHold) this._tag('Original — release C to see the result', 8, 8, 'left');
    // Brush outline under the pointer.
    if (this.pointer && this.tool !== 'pan' && !this.tempPan && !this.drag) {
      const r = Math.max(1, (this.brushSize * this.zoom) / 2);
      g.lineWidth = 1.5;
      g.strokeStyle = 'rgba(0,0,0,.8)';
      g.beginPath(); g.arc(this.pointer[0], this.pointer[1], r + 1, 0, Math.PI * 2); g.stroke();
      g.strokeStyle = this.tool === 'eraser' ? 'rgba(255,255,255,.95)' : `rgba(${MASK_RGB.join(',')},.95)`;
      g.beginPath(); g.arc(this.pointer[0], this.pointer[1], r, 0, Math.PI * 2); g.stroke();
    }
  }

  /** A small white-on-dark label at view coordinates (x is its left or right edge). */
  _tag(text, x, y, align) {
    const g = this.ctx;
    g.font = '12px system-ui, sans-serif';
    const w = g.measureText(text).width + 12;
    const left = align === 'right' ? x - w : x;
    g.fillStyle = 'rgba(0,0,0,.7)';
    g.fillRect(left, y, w, 20);
    g.fillStyle = '#fff';
    g.fillText(text, left + 6, y + 14);
  }

  _bind() {
    const v = this.view;
    new ResizeObserver(() => this._resize()).observe(v);
    v.addEventListener('contextmenu', (e) => e.preventDefault());
    v.addEventListener('pointerdown', (e) => this._down(e));
    v.addEventListener('pointermove', (e) => this._move(e));
    v.addEventListener('pointerup', (e) => this._up(e));
    v.addEventListener('pointercancel', (e) => this._up(e, true));
    v.addEventListener('pointerleave', () => { this.pointer = null; this.render(); });
    v.addEventListener('wheel', (e) => {
      if (!this.hasImage) return;
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      this.zoomBy(Math.exp(-e.deltaY * unit * 0.0015), e.offsetX, e.offsetY);
    }, { passive: false });
  }

  _down(e) {
    if (!this.hasImage) return;
    this.view.focus({ preventScroll: true });
    if (e.pointerType === 'touch') {
      this.touches.set(e.pointerId, [e.offsetX, e.offsetY]);
      if (this.touches.size === 2) { // second finger: pinch instead of paint
        this._abortStroke();
        this.drag = { pinch: this._pinchState() };
        return;
      }
    }
    const panning = this.tool === 'pan' || this.tempPan || e.button === 1 || e.button === 2;
    if (e.button !== 0 && !panning) return;
    this.view.setPointerCapture(e.pointerId);
    if (panning) {
      this.drag = { x: e.offsetX, y: e.offsetY, panX: this.panX, panY: this.panY };
      this.view.classList.add('panning');
      return;
    }
    const p = this.toImage(e.offsetX, e.offsetY);
    this.stroke = { type: 'stroke', erase: this.tool === 'eraser', size: this.brushSize, points: [p], id: e.pointerId };
    this._dab(this.stroke, p, p);
    this.render();
  }

  _move(e) {
    this.pointer = [e.offsetX, e.offsetY];
    if (e.pointerType === 'touch' && this.touches.has(e.pointerId)) this.touches.set(e.pointerId, [e.offsetX, e.offsetY]);
    if (this.drag?.pinch) {
      if (this.touches.size === 2) {
        const now = this._pinchState(), was = this.drag.pinch;
        this.zoomTo(this.zoom * (now.d / was.d), was.cx, was.cy);
        this.panX += now.cx - was.cx; this.panY += now.cy - was.cy;
        this.drag.pinch = now;
      }
    } else if (this.drag) {
      this.panX = this.drag.panX + e.offsetX - this.drag.x;
      this.panY = this.drag.panY + e.offsetY - this.drag.y;
      this.fitted = false;
      this._changed('pan');
    } else if (this.stroke && e.pointerId === this.stroke.id) {
      // Coalesced events keep fast strokes smooth.
      const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      for (const ev of evs.length ? evs : [e]) {
        const p = this.toImage(ev.offsetX, ev.offsetY);
        const q = this.stroke.points[this.stroke.points.length - 1];
        if (Math.hypot(p[0] - q[0], p[1] - q[1]) < 0.5) continue;
        this.stroke.points.push(p);
        this._dab(this.stroke, q, p);
      }
    }
    this.render();
  }

  _up(e, cancelled = false) {
    if (e.pointerType === 'touch') this.touches.delete(e.pointerId);
    if (this.drag) {
      if (!this.drag.pinch || this.touches.size === 0) {
        this.drag = null;
        this.view.classList.remove('panning');
      }
      return;
    }
    if (this.stroke && e.pointerId === this.stroke.id) {
      const s = this.stroke;
      this.stroke = null;
      if (cancelled) { this._rebuildMask(); return; }
      delete s.id;
      this._push(s);
      this._changed('stroke');
    }
  }

  _abortStroke() {
    if (this.stroke) { this.stroke = null; this._rebuildMask(); }
  }

  _pinchState() {
    const [a, b] = [...this.touches.values()];
    return { d: Math.max(1, Math.hypot(a[0] - b[0], a[1] - b[1])), cx: (a[0] + b[0]) / 2, cy: (a[1] + b[1]) / 2 };
  }
}
