# frozen_string_literal: true

# MCA proof-tier program for Ruby kubeclient: an app that reaches the API the
# way kubeclient's README describes for code running inside a Pod (bearer
# token file + CA file from the service-account directory), with the server
# taken from KUBERNETES_SERVICE_HOST/_PORT because kubeclient 4.9 has no
# in-cluster helper of its own.
#
# Prints one JSON line per operation: {"op": ..., "ok": ..., "detail": ...}.
# Exits 0 even when operations fail.

require 'json'
require 'openssl'
require 'kubeclient'

SDK = 'ruby'
SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
FIELD_MANAGER = 'mca-sdk-ruby'
WATCH_DEADLINE = 20

$stdout.sync = true

def emit(op, ok, detail)
  puts JSON.generate({ 'op' => op, 'ok' => ok ? true : false, 'detail' => detail.to_s })
end

def head(text, max)
  t = text.to_s.strip.tr("\n", ' ')
  t.length <= max ? t : "#{t[0, max]}..."
end

# [code, reason, message] of an HttpError, reason and message from the
# Status body the server sent.
def api_error(error)
  reason = ''
  message = error.message
  body = error.response.respond_to?(:body) ? error.response.body : error.response
  begin
    status = JSON.parse(body.to_s)
    reason = status['reason'].to_s
    message = status['message'] || message
  rescue JSON::ParserError, TypeError
    # Not a Status: keep kubeclient's message.
  end
  [error.error_code, reason, message]
end

def describe(error)
  # kubeclient also wraps transport failures (TLS, connection) in HttpError,
  # with no status code.
  if error.is_a?(Kubeclient::HttpError) && error.error_code
    code, reason, message = api_error(error)
    return head("#{error.class} #{code} #{reason}: #{message}", 300)
  end
  text = "#{error.class}: #{error.message}"
  cause = error.cause
  while cause
    text += " (caused by #{cause.class}: #{cause.message})"
    cause = cause.cause
  end
  head(text, 400)
end

def server_url
  host = ENV.fetch('KUBERNETES_SERVICE_HOST')
  port = ENV.fetch('KUBERNETES_SERVICE_PORT')
  host = "[#{host}]" if host.include?(':') # IPv6 literal
  "https://#{host}:#{port}"
end

def new_client(path, version)
  auth_options = { bearer_token_file: "#{SA_DIR}/token" }
  # kubeclient hands ssl_options[:verify_ssl] to rest-client and the http gem
  # as given: left out (as in the README example) it is nil, which both read
  # as VERIFY_NONE. Ask for verification explicitly.
  ssl_options = { verify_ssl: OpenSSL::SSL::VERIFY_PEER }
  ssl_options[:ca_file] = "#{SA_DIR}/ca.crt" if File.exist?("#{SA_DIR}/ca.crt")
  Kubeclient::Client.new(
    "#{server_url}#{path}", version,
    auth_options: auth_options, ssl_options: ssl_options
  )
end

def data_of(object)
  (object.data&.to_h || {}).transform_keys(&:to_s)
end

def watch_op(core, namespace, name)
  # Start from the object's current version: only later changes are sent, so
  # the change below is seen even if it lands before the stream is open.
  rv = core.get_config_map(name, namespace).metadata.resourceVersion
  watcher = core.watch_config_maps(namespace: namespace, label_selector: "sdk=#{SDK}",
                                   resource_version: rv)
  lock = Mutex.new
  done = ConditionVariable.new
  result = nil
  seen = []
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  finish = lambda do |value|
    lock.synchronize do
      result ||= value
      done.signal
    end
  end

  reader = Thread.new do
    watcher.each do |notice|
      event_name = notice.object&.metadata&.name
      if notice.type == 'MODIFIED' && event_name == name
        ms = ((Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) * 1000).round
        finish.call([true, "MODIFIED #{name} after #{ms} ms"])
        break
      elsif notice.type == 'ERROR'
        finish.call([false, "ERROR event: #{notice.object.to_h}"])
        break
      end
      lock.synchronize { seen << "#{notice.type} #{event_name}" }
    end
    finish.call([false, "watch ended without MODIFIED; saw #{seen}"])
  rescue StandardError => e
    finish.call([false, "watch failed: #{describe(e)}"])
  end

  # kubeclient opens the stream inside #each and offers no hook for "the
  # server answered", so give the request a moment before changing the object
  # (the resourceVersion above makes the outcome independent of the timing).
  writer_error = nil
  writer = Thread.new do
    sleep 0.5
    core.merge_patch_config_map(name, { data: { watched: 'yes' } }, namespace)
  rescue StandardError => e
    writer_error = describe(e)
  end

  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + WATCH_DEADLINE
  lock.synchronize do
    while result.nil?
      remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      break if remaining <= 0

      done.wait(lock, remaining)
    end
    result ||= [false, "no MODIFIED event within #{WATCH_DEADLINE} s; saw #{seen}"]
  end
  watcher.finish
  reader.join(5)
  writer.join(5)
  return [false, "modifying failed: #{writer_error}; #{result[1]}"] if writer_error

  result
end

def main
  emit('version', true, "kubeclient #{Kubeclient::VERSION}")

  namespace = File.read("#{SA_DIR}/namespace").strip
  seed = "sdk-#{SDK}-seed"
  name = "sdk-#{SDK}-x"
  core = new_client('/api', 'v1')
  authn = new_client('/apis/authentication.k8s.io', 'v1')

  begin
    review = authn.create_self_subject_review({ metadata: {} })
    user = review.status&.userInfo&.username.to_s
    emit('whoami', !user.empty?, user)
  rescue StandardError => e
    emit('whoami', false, describe(e))
  end

  begin
    cm = core.get_config_map(seed, namespace)
    emit('get', true, "#{cm.metadata.name} rv=#{cm.metadata.resourceVersion}")
  rescue StandardError => e
    emit('get', false, describe(e))
  end

  begin
    items = core.get_config_maps(namespace: namespace)
    found = items.any? { |c| c.metadata.name == seed }
    emit('list', found, "#{items.size} items, seed #{found ? 'present' : 'missing'}")
  rescue StandardError => e
    emit('list', false, describe(e))
  end

  leftover = ''
  begin
    core.delete_config_map(name, namespace)
    leftover = ' (deleted a leftover first)'
    50.times do
      core.get_config_map(name, namespace)
      sleep 0.1
    rescue Kubeclient::ResourceNotFoundError
      break
    end
  rescue Kubeclient::ResourceNotFoundError
    # Nothing left over.
  rescue StandardError => e
    leftover = " (deleting a leftover failed: #{describe(e)})"
  end
  begin
    cm = core.create_config_map(
      Kubeclient::Resource.new(
        metadata: { name: name, namespace: namespace, labels: { sdk: SDK } },
        data: { a: '1' }
      )
    )
    emit('create', true, "#{cm.metadata.name} rv=#{cm.metadata.resourceVersion}#{leftover}")
  rescue StandardError => e
    emit('create', false, "#{describe(e)}#{leftover}")
  end

  begin
    cm = core.merge_patch_config_map(name, { data: { b: '2' } }, namespace)
    data = data_of(cm)
    emit('patch-merge', data['a'] == '1' && data['b'] == '2', "data=#{data}")
  rescue StandardError => e
    emit('patch-merge', false, describe(e))
  end

  begin
    desired = {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: name, namespace: namespace, labels: { sdk: SDK } },
      data: { c: '3' }
    }
    cm = core.apply_config_map(desired, field_manager: FIELD_MANAGER, force: true)
    managed = (cm.metadata.managedFields || []).any? do |f|
      f.manager == FIELD_MANAGER && f.operation == 'Apply'
    end
    data = data_of(cm)
    emit('apply', managed && data['c'] == '3',
         "data=#{data}, manager #{FIELD_MANAGER} applied=#{managed}")
  rescue StandardError => e
    emit('apply', false, describe(e))
  end

  begin
    ok, detail = watch_op(core, namespace, name)
    emit('watch', ok, detail)
  rescue StandardError => e
    emit('watch', false, describe(e))
  end

  begin
    core.delete_config_map(name, namespace)
    emit('delete', true, "#{name} deleted")
  rescue StandardError => e
    emit('delete', false, describe(e))
  end

  begin
    secrets = core.get_secrets(namespace: namespace)
    emit('forbidden', false, "listing secrets succeeded (#{secrets.size})")
  rescue Kubeclient::HttpError => e
    if e.error_code
      code, reason, message = api_error(e)
      emit('forbidden', code == 403, head("#{code} #{reason}: #{message}", 240))
    else
      emit('forbidden', false, describe(e))
    end
  rescue StandardError => e
    emit('forbidden', false, describe(e))
  end
end

main
