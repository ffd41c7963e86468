# devcloud's Octavia network driver: the noop driver, except that every load
# balancer gets a real Neutron VIP port.
#
# Octavia's stock noop network driver invents VIP port IDs that Neutron does not
# know, so a floating IP cannot be associated with a load balancer's VIP (404
# PortNotFound) — but OCCM and CAPO both do exactly that. This driver creates the
# VIP port in Neutron on allocate_vip (name octavia-lb-<id>, device_owner Octavia,
# in the load balancer's project, like the production allowed-address-pairs
# driver) and deletes it on deallocate_vip. A user-supplied --vip-port-id is used
# as is and never deleted. Network, subnet and port lookups go to Neutron too, so
# the API validates VIP and member networks as in production; lookups without a
# request context (worker flows, which with noop amphorae ask about made-up
# amphora ports) fall back to the noop answers when Neutron does not know the ID.
#
# Registered as entry point octavia.network.drivers:devcloud_vip_driver by
# scripts/devcloud/devcloud.sh install; selected by
# [controller_worker] network_driver = devcloud_vip_driver.

from neutronclient.common import exceptions as neutron_exceptions
from oslo_config import cfg
from oslo_log import log as logging

from octavia.common import clients
from octavia.network import base
from octavia.network.drivers.neutron import base as neutron_base
from octavia.network.drivers.neutron import utils
from octavia.network.drivers.noop_driver import driver as noop

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
OCTAVIA_OWNER = 'Octavia'


class VipPortNetworkDriver(noop.NoopNetworkDriver):
    """Noop network driver with real Neutron VIP ports."""

    def __init__(self):
        super().__init__()
        self._neutron = None

    @property
    def neutron_client(self):
        # Created on first use, so that loading the driver needs no network.
        if self._neutron is None:
            self._neutron = clients.NeutronAuth.get_neutron_client(
                endpoint=CONF.neutron.endpoint,
                region=CONF.neutron.region_name,
                endpoint_type=CONF.neutron.endpoint_type,
                service_name=CONF.neutron.service_name,
                insecure=CONF.neutron.insecure,
                ca_cert=CONF.neutron.ca_certificates_file)
        return self._neutron

    # The production driver's helpers only need self.neutron_client.
    _get_resource = neutron_base.BaseNeutronDriver._get_resource
    _port_to_vip = neutron_base.BaseNeutronDriver._port_to_vip

    def _real_or_noop(self, kind, resource_id, context, noop_get):
        try:
            return self._get_resource(kind, resource_id, context=context)
        except (base.PortNotFound, base.NetworkNotFound, base.SubnetNotFound):
            if context is not None:
                raise  # an API request: validate like production
            return noop_get(resource_id)

    def get_port(self, port_id, context=None):
        return self._real_or_noop('port', port_id, context, super().get_port)

    def get_network(self, network_id, context=None):
        return self._real_or_noop('network', network_id, context,
                                  super().get_network)

    def get_subnet(self, subnet_id, context=None):
        return self._real_or_noop('subnet', subnet_id, context,
                                  super().get_subnet)

    def allocate_vip(self, load_balancer):
        vip = load_balancer.vip
        if vip.port_id:
            try:
                port = self._get_resource('port', vip.port_id)
                LOG.info('devcloud: using existing VIP port %s for load '
                         'balancer %s', port.id, load_balancer.id)
                return self._port_to_vip(port, load_balancer,
                                         octavia_owned=vip.octavia_owned)
            except base.PortNotFound:
                LOG.warning('devcloud: VIP port %s missing, creating a new '
                            'one', vip.port_id)
        fixed_ip = {}
        if vip.subnet_id:
            fixed_ip['subnet_id'] = vip.subnet_id
        if vip.ip_address:
            fixed_ip['ip_address'] = vip.ip_address
        fixed_ips = [fixed_ip] if fixed_ip else []
        for add_vip in load_balancer.additional_vips or []:
            add_ip = {}
            if add_vip.subnet_id:
                add_ip['subnet_id'] = add_vip.subnet_id
            if add_vip.ip_address:
                add_ip['ip_address'] = add_vip.ip_address
            if add_ip:
                fixed_ips.append(add_ip)
        network_id = vip.network_id
        if not network_id and vip.subnet_id:
            network_id = self._get_resource('subnet', vip.subnet_id).network_id
        port = {'port': {
            'name': 'octavia-lb-' + load_balancer.id,
            'network_id': network_id,
            'admin_state_up': False,
            'device_id': 'lb-' + load_balancer.id,
            'device_owner': OCTAVIA_OWNER,
            'project_id': load_balancer.project_id}}
        if fixed_ips:
            port['port']['fixed_ips'] = fixed_ips
        try:
            new_port = self.neutron_client.create_port(port)
        except Exception as e:
            message = ('Error creating neutron port on network {0} due to '
                       '{1}.').format(network_id, e)
            LOG.exception(message)
            raise base.AllocateVIPException(
                message, orig_msg=getattr(e, 'message', None),
                orig_code=getattr(e, 'status_code', None))
        new_port = utils.convert_port_dict_to_model(new_port)
        LOG.info('devcloud: created VIP port %s for load balancer %s',
                 new_port.id, load_balancer.id)
        return self._port_to_vip(new_port, load_balancer, octavia_owned=True)

    def deallocate_vip(self, vip):
        super().deallocate_vip(vip)
        if not vip.port_id:
            return
        try:
            port = self._get_resource('port', vip.port_id)
        except base.PortNotFound:
            LOG.warning('devcloud: VIP port %s already gone', vip.port_id)
            return
        if port.device_owner != OCTAVIA_OWNER:
            LOG.info('devcloud: VIP port %s belongs to the user, keeping it',
                     vip.port_id)
            return
        try:
            self.neutron_client.delete_port(vip.port_id)
            LOG.info('devcloud: deleted VIP port %s', vip.port_id)
        except (neutron_exceptions.NotFound,
                neutron_exceptions.PortNotFoundClient):
            LOG.debug('devcloud: VIP port %s already deleted', vip.port_id)
        except Exception as e:
            message = 'Error deleting VIP port_id {0} from neutron'.format(
                vip.port_id)
            LOG.exception(message)
            raise base.DeallocateVIPException(message) from e
